"""Benchmark the engine foundation on this machine and print the figures.

    python -m scripts.bench_foundation                # train the original model once + evaluate 3x
    python -m scripts.bench_foundation --skip-train   # evaluation timing only

Targets (issue "Engine foundation", 2-core CPU): training the original fashion-mini model ≤ 3 min with
≥ 87 % test accuracy; evaluating every metric of one model on fashion-mini ≤ 10 s.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from engine import (ForgetSpec, evaluate, load_checkpoint, load_dataset, make_split, resolve_device, device_name,
                    train_and_save, versions)
from engine.references import original_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    device = resolve_device(args.device)
    figures: dict = {"device": device_name(device), "versions": versions()}
    start = time.perf_counter()
    data = load_dataset("fashion-mini")
    figures["load_dataset_s"] = time.perf_counter() - start

    if not args.skip_train:
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            path, _ = train_and_save(data, Path(folder) / "original", device=device, seed=0)
            figures["train_original_s"] = time.perf_counter() - start
            _, record = load_checkpoint(path)
            figures["train_original_test_acc"] = record["metrics"]["test_acc"]
        print(f"train original: {figures['train_original_s']:.1f} s, test accuracy "
              f"{figures['train_original_test_acc']:.2f} %  (target ≤ 180 s, ≥ 87 %)", flush=True)

    model, _ = load_checkpoint(original_path(data.name), device=device)
    for label, spec in (("class 3", ForgetSpec(classes=(3,))), ("random 10%", ForgetSpec(fraction=0.1))):
        split = make_split(data, spec)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = evaluate(model, data, split, device=device)
            times.append(time.perf_counter() - start)
        figures[f"evaluate_{label}_s"] = statistics.median(times)
        print(f"evaluate ({label}): median {statistics.median(times):.2f} s over {args.repeats} "
              f"(all: {', '.join(f'{t:.2f}' for t in times)}) → UA {result.UA:.2f} RA {result.RA:.2f} "
              f"TA {result.TA:.2f} MIA {result.MIA:.2f}  (target ≤ 10 s)", flush=True)
    print(f"device: {figures['device']}; torch {figures['versions']['torch']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
