"""Benchmark training recipes for the small CNN on fashion-mini: time, throughput and accuracy, same run.

    python -m scripts.bench_recipe ablation --variants classic short short+ls --seeds 0 1
    python -m scripts.bench_recipe retrain --variants classic default --classes 3 --references /tmp/classic
    python -m scripts.bench_recipe speed            # images/s of one training step: batch sizes, fp32 vs bf16
    python -m scripts.bench_recipe flops            # FLOPs of one training step, achieved GFLOP/s, CPU peak

A variant is a base recipe and ingredients joined by '+': bases are the names in engine.training.RECIPES
(``default`` = RECIPES["small-cnn"], ``classic`` = the previous 20-epoch fp32 recipe) and
``short`` (the classic recipe cut to 6 epochs); ingredients are listed in INGREDIENTS. Variants run interleaved (seed by seed, variant by
variant) so that a machine shared with other jobs slows them alike: quote same-run ratios, not absolute
seconds. Results are printed (this is a measuring script) and, with --out, written as JSON lines.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from engine import ForgetSpec, load_dataset
from engine.evaluation import evaluate
from engine.metrics import accuracy
from engine.models import build_model, spec_for
from engine.references import CHECKPOINT_DIR, train_from_scratch
from engine.splits import make_split, training_indices
from engine.training import RECIPES, DeviceImages, TrainRecipe, place, predict, seed_everything

CPU = torch.device("cpu")
INGREDIENTS = {
    "ls": dict(label_smoothing=0.1),
    "ls2": dict(label_smoothing=0.2),
    "ema": dict(ema_decay=0.99),
    "tail": dict(augment_until=5 / 6),
    "noaug": dict(augment=False),
    "flip": dict(translate=0),
    "t1": dict(translate=1),
    "t2": dict(translate=2),
    "bs256": dict(batch_size=256, lr=0.16),
    "bs64": dict(batch_size=64, lr=0.04),
    "lr12": dict(lr=0.12),
    "lr05": dict(lr=0.05),
    "warm05": dict(warmup=0.05),
    "wd1": dict(weight_decay=1e-3),
    "e4": dict(epochs=4),
    "e5": dict(epochs=5),
    "e6": dict(epochs=6),
    "e7": dict(epochs=7),
    "e8": dict(epochs=8),
    "e9": dict(epochs=9),
    "e10": dict(epochs=10),
    "e12": dict(epochs=12),
    "bf16": dict(cpu_bf16=True),
    "fp32": dict(cpu_bf16=False),
}


def recipe_for(variant: str) -> TrainRecipe:
    base, *ingredients = variant.split("+")
    if base == "short":
        recipe = dataclasses.replace(RECIPES["small-cnn-classic"], epochs=6)
    elif base == "default":
        recipe = RECIPES["small-cnn"]
    elif base == "classic":
        recipe = RECIPES["small-cnn-classic"]
    elif base in RECIPES:
        recipe = RECIPES[base]
    else:
        raise SystemExit(f"unknown base {base!r}: use short, default, classic or one of {', '.join(RECIPES)}")
    for name in ingredients:
        if name not in INGREDIENTS:
            raise SystemExit(f"unknown ingredient {name!r}: choose from {', '.join(INGREDIENTS)}")
        recipe = dataclasses.replace(recipe, **INGREDIENTS[name])
    return recipe


def emit(row: dict, out) -> None:
    print(json.dumps(row), flush=True)
    if out:
        with open(out, "a") as handle:
            handle.write(json.dumps(row) + "\n")


def ablation(args, dataset) -> None:
    """Train the original model (the full training set) per variant and seed; report test accuracy."""
    indices = training_indices(dataset, 0)
    for seed in args.seeds:
        for variant in args.variants:
            recipe = recipe_for(variant)
            start = time.perf_counter()
            model = train_from_scratch(dataset, indices, recipe=recipe, device=CPU, seed=seed)
            seconds = time.perf_counter() - start
            test = predict(model, dataset.test_images, device=CPU)
            emit({"mode": "ablation", "variant": variant, "seed": seed, "seconds": round(seconds, 1),
                  "images_per_s": round(recipe.epochs * len(indices) / seconds),
                  "test_acc": round(accuracy(test.predictions, dataset.test_labels.numpy()), 2)}, args.out)


def retrain(args, dataset) -> None:
    """Retrain (train from scratch on D_r) per class and variant; report TA beside the shipped reference's."""
    for klass in args.classes:
        spec = ForgetSpec(classes=(klass,))
        split = make_split(dataset, spec, 0)
        sidecar = args.references / f"retrain-class-{klass}.json"
        reference = json.loads(sidecar.read_text())["metrics"] if sidecar.is_file() else {}
        for seed in args.seeds:
            for variant in args.variants:
                recipe = recipe_for(variant)
                start = time.perf_counter()
                model = train_from_scratch(dataset, split.retain, recipe=recipe, device=CPU, seed=seed,
                                           stage="retrain")
                seconds = time.perf_counter() - start
                scores = evaluate(model, dataset, split, device=CPU).scores()
                emit({"mode": "retrain", "class": klass, "variant": variant, "seed": seed,
                      "seconds": round(seconds, 1), "images_per_s": round(recipe.epochs * len(split.retain) / seconds),
                      "TA": round(scores["TA"], 2), "RA": round(scores["RA"], 2), "UA": round(scores["UA"], 2),
                      "reference_TA": round(reference["TA"], 2) if reference else None}, args.out)


def step_timer(dataset, batch_size: int, precision: str, steps: int, warmup: int = 3):
    """Seconds per image of a training step (after ``warmup`` steps) with fp32 or CPU bf16 autocast."""
    seed_everything(0)
    model = place(build_model(spec_for(dataset)), CPU)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    data = DeviceImages.from_indices(dataset, np.arange(batch_size * 4), CPU)
    generator = torch.Generator().manual_seed(0)
    context = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else \
        (lambda: torch.autocast("cpu", enabled=False))
    start = None
    for step in range(steps + warmup):
        if step == warmup:
            start = time.perf_counter()
        images, labels = data.batch(torch.arange(batch_size) + (step % 4) * batch_size, hflip=dataset.hflip,
                                    generator=generator)
        with context():
            loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / (steps * batch_size)


def speed(args, dataset) -> None:
    bf16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    print(json.dumps({"cpu_capability": torch.backends.cpu.get_cpu_capability(), "mkldnn_bf16": bool(bf16)}))
    for repeat in range(2):  # interleaved, twice: the machine's load changes by the minute
        for batch_size in (128, 256, 512):
            for precision in ("fp32", "bf16") if batch_size == 128 else ("fp32",):
                # bf16 is emulated on a CPU without AVX-512 BF16 (10x slower): time fewer of its steps
                steps, warmup = (max(2, 2048 // batch_size), 3) if precision == "fp32" else (2, 1)
                seconds = step_timer(dataset, batch_size, precision, steps, warmup)
                emit({"mode": "speed", "repeat": repeat, "batch_size": batch_size, "precision": precision,
                      "images_per_s": round(1 / seconds)}, args.out)


def cpu_peaks() -> dict:
    """This CPU's peak GFLOP/s from its clock, core count and vector units (the assumptions are in the output).

    fp32: FMA lanes × 2 FLOP × FMA units per core (2 on server cores) × cores × GHz, the lanes being 16 with
    AVX-512 and 8 with AVX2. bf16: AVX-512 BF16's dot-product instruction does 2 bf16 products per fp32 lane
    (2× fp32); AMX's tile multiply (TDPBF16PS) does 1,024 bf16 multiply-adds per cycle per core.
    """
    import re

    info = open("/proc/cpuinfo").read()
    flags = set(re.search(r"^flags\s*:(.*)$", info, re.M).group(1).split())
    mhz = float(re.search(r"^cpu MHz\s*:\s*([\d.]+)", info, re.M).group(1))
    model = re.search(r"^model name\s*:\s*(.*)$", info, re.M).group(1).strip()
    cores = torch.get_num_threads()
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    fp32 = lanes * 2 * 2 * cores * mhz / 1000
    peaks = {"cpu": model, "mhz": mhz, "cores": cores, "fp32_lanes": lanes, "fma_units_assumed": 2,
             "peak_fp32_gflops": round(fp32, 1)}
    if "avx512_bf16" in flags:
        peaks["peak_bf16_avx512_gflops"] = round(2 * fp32, 1)
    if "amx_bf16" in flags:
        peaks["peak_bf16_amx_gflops"] = round(1024 * 2 * cores * mhz / 1000, 1)
    return peaks


def flops(args, dataset) -> None:
    """FLOPs of one training step (forward + backward) counted by torch, achieved rate, and the CPU's peak."""
    from torch.utils.flop_counter import FlopCounterMode

    batch_size = 128
    seed_everything(0)
    model = place(build_model(spec_for(dataset)), CPU)
    images = torch.rand(batch_size, *dataset.image_shape).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, dataset.num_classes, (batch_size,))
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(images), labels).backward()
    total = counter.get_total_flops()
    forward_counter = FlopCounterMode(display=False)
    with torch.no_grad(), forward_counter:
        model(images)
    forward = forward_counter.get_total_flops()
    per_image = total / batch_size
    peaks = cpu_peaks()
    emit({"mode": "flops", **peaks}, args.out)
    precisions = ("fp32", "bf16") if torch.ops.mkldnn._is_mkldnn_bf16_supported() else ("fp32",)
    for repeat in range(2):
        for precision in precisions:
            seconds = step_timer(dataset, batch_size, precision, 32)
            achieved = per_image / seconds / 1e9
            emit({"mode": "flops", "repeat": repeat, "precision": precision, "batch_size": batch_size,
                  "train_step_flops_per_image": per_image, "forward_flops_per_image": forward / batch_size,
                  "images_per_s": round(1 / seconds), "achieved_gflops": round(achieved, 1),
                  "share_of_fp32_peak": round(achieved / peaks["peak_fp32_gflops"], 3)}, args.out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("ablation", "retrain", "speed", "flops"))
    parser.add_argument("--variants", nargs="+", default=["classic", "default"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--classes", nargs="+", type=int, default=[3])
    parser.add_argument("--references", type=lambda p: __import__("pathlib").Path(p),
                        default=CHECKPOINT_DIR / "fashion-mini", help="folder of the sidecars to compare TA with")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="append each result as a JSON line to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for variant in args.variants if args.mode in ("ablation", "retrain") else ():
        recipe_for(variant)  # fail on a typo before the first long run
    {"ablation": ablation, "retrain": retrain, "speed": speed, "flops": flops}[args.mode](args, load_dataset("fashion-mini"))


if __name__ == "__main__":
    main()
