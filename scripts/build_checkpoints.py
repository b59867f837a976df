"""Build the shipped checkpoints: the original fashion-mini model and a Retrain reference per class.

    python -m scripts.build_checkpoints --overwrite --threads 2   # all 11 (≈ 4.5 min on the quiet 2-core CPU with bf16)
    python -m scripts.build_checkpoints --only original
    python -m scripts.build_checkpoints --only 3 7 --overwrite
    python -m scripts.build_checkpoints --recipe small-cnn-classic --root /tmp/classic   # the old recipe

Each checkpoint is trained from scratch with the same recipe (engine.training.RECIPES, recorded whole in the
sidecar's "recipe") and seed, on the
full training set (original) or on the retain set of one forgotten class (Retrain = exact unlearning),
evaluated under that class's forget spec, and written with its sidecar JSON to
assets/checkpoints/<dataset>/.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from engine import RECIPES, ForgetSpec, load_dataset, resolve_device, train_and_save
from engine.references import original_path, reference_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion-mini")
    parser.add_argument("--only", nargs="+", help="'original' and/or class indices")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--recipe", default="small-cnn", choices=sorted(RECIPES), help="a named recipe")
    parser.add_argument("--root", type=Path, help="write under this folder instead of assets/checkpoints")
    parser.add_argument("--threads", type=int, help="torch CPU threads (1 avoids thread oversubscription on a busy machine)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    dataset = load_dataset(args.dataset)
    device = resolve_device(args.device)
    wanted = args.only or ["original", *map(str, range(dataset.num_classes))]
    for item in wanted:
        spec = None if item == "original" else ForgetSpec(classes=(int(item),))
        out = original_path(dataset.name, args.root) if spec is None else reference_path(dataset.name, spec, args.root)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists() and not args.overwrite:
            print(f"skip {out} (exists)")
            continue
        start = time.perf_counter()
        path, evaluation = train_and_save(dataset, out, forget=spec, recipe=RECIPES[args.recipe], device=device,
                                          seed=args.seed, overwrite=args.overwrite)
        figures = evaluation.scores() if evaluation is not None else {}
        print(f"{path}: {time.perf_counter() - start:.1f} s {figures}", flush=True)


if __name__ == "__main__":
    main()
