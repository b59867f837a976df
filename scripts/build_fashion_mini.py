"""Build assets/fashion-mini.npz: a stratified, seeded subset of Fashion-MNIST.

Source: Debian package `dataset-fashion-mnist` (IDX files under /usr/share/datasets/fashion-mnist/),
which is Zalando Research's Fashion-MNIST, MIT licence.

    apt-get install dataset-fashion-mnist
    python scripts/build_fashion_mini.py            # writes assets/fashion-mini.npz

The selection is deterministic (seed 0): 1,200 training images per class (12,000; the engine carves a
validation split out of them) and 200 test images per class (2,000), with their original indices kept
for provenance.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from engine.idx import find_idx, read_idx

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


def stratified(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    chosen = [np.sort(rng.choice(np.flatnonzero(labels == c), per_class, replace=False)) for c in range(10)]
    return np.sort(np.concatenate(chosen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEBIAN_DIR)
    parser.add_argument("--out", type=Path, default=Path("assets/fashion-mini.npz"))
    parser.add_argument("--train-per-class", type=int, default=1200)
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    files = {stem: find_idx(args.source, stem) for stem in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    missing = [stem for stem, path in files.items() if path is None]
    if missing:
        raise SystemExit(f"missing {missing} in {args.source}: apt-get install dataset-fashion-mnist")
    train_x, train_y = read_idx(files["train-images-idx3-ubyte"]), read_idx(files["train-labels-idx1-ubyte"])
    test_x, test_y = read_idx(files["t10k-images-idx3-ubyte"]), read_idx(files["t10k-labels-idx1-ubyte"])

    rng = np.random.default_rng(args.seed)
    train_ids = stratified(train_y, args.train_per_class, rng)
    test_ids = stratified(test_y, args.test_per_class, rng)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        train_images=train_x[train_ids], train_labels=train_y[train_ids].astype(np.uint8),
        test_images=test_x[test_ids], test_labels=test_y[test_ids].astype(np.uint8),
        train_source_ids=train_ids.astype(np.int32), test_source_ids=test_ids.astype(np.int32),
    )
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, sha256 {digest}): "
          f"{len(train_ids)} train, {len(test_ids)} test")


if __name__ == "__main__":
    main()
