"""The GPU path, end to end, in one prepared script: run it on a CUDA machine, commit what it writes.

    python -m scripts.gpu_check --make-npz artifacts/fashion-mnist.npz     # once, where the IDX files are
    python -m scripts.gpu_check --npz artifacts/fashion-mnist.npz --out artifacts/gpu.json --doc docs/gpu.md
    python -m scripts.gpu_check --tiny --out /tmp/gpu.json --doc /tmp/gpu.md    # CPU, a minute or two

Steps (each timed): (1) the engine's tests (``--tests``); (2) the CIFAR-style ResNet-18 trained on full
Fashion-MNIST (the .npz, under 64 MiB, carries it to a machine without the Debian package); (3) Retrain,
WSS-CL and SalUn with it, class-wise (class 3) and random 10 %, Avg. Gap against that Retrain; (4) a
population of 32 small-CNN shadow models sharing the GPU through the executor (Ray, 1/8 GPU each);
(5) a JSON of every figure and docs/gpu.md with the device's name. ``--tiny`` shrinks every step (a
slice of fashion-mini, one epoch, 4 members in-process) so CI proves the script itself.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NPZ_LIMIT = 64 * 2**20
ENGINE_TESTS = ["tests/test_methods.py", "tests/test_training.py", "tests/test_metrics.py", "tests/test_splits.py",
                "tests/test_checkpoints.py", "tests/test_executor.py", "tests/test_population.py"]


def make_npz(path: Path, root: str) -> int:
    from engine.data import load_dataset
    from engine.executor import save_dataset_npz

    save_dataset_npz(load_dataset("fashion-mnist", root=root), path)
    size = path.stat().st_size
    if size > NPZ_LIMIT:
        raise SystemExit(f"{path} is {size / 2**20:.1f} MiB, over the 64 MiB a device run can carry")
    print(f"wrote {path} ({size / 2**20:.1f} MiB)")
    return 0


def tiny_dataset(folder: Path) -> Path:
    """A 28×28 slice of fashion-mini (320 train / 160 test) as an .npz."""
    from engine.data import from_arrays, load_dataset
    from engine.executor import save_dataset_npz

    full = load_dataset("fashion-mini")
    small = from_arrays("fashion-tiny", full.classes, full.train_images[:320].numpy(), full.train_labels[:320].numpy(),
                        full.test_images[:160].numpy(), full.test_labels[:160].numpy(), hflip=full.hflip,
                        validation_size=32, source="fashion-mini slice")
    return save_dataset_npz(small, folder / "fashion-tiny.npz")


def timed(figures: dict, name: str):
    class Timer:
        def __enter__(self):
            self.start = time.perf_counter()

        def __exit__(self, *exc):
            figures.setdefault("seconds", {})[name] = round(time.perf_counter() - self.start, 2)
    return Timer()


def run(args: argparse.Namespace) -> dict:
    import torch

    from engine.checkpoints import save_checkpoint
    from engine.executor import dataset_ref, make_executor, open_dataset
    from engine.population import build_population
    from engine.references import train_from_scratch
    from engine.splits import ForgetSpec, make_split, training_indices
    from engine.training import RECIPES, device_name, resolve_device
    from engine.unlearning import bench_table, run_unlearning

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    device = resolve_device("auto")
    figures: dict = {"device": device_name(device), "host": platform.node(), "tiny": args.tiny,
                     "torch": torch.__version__, "cuda": torch.version.cuda if torch.cuda.is_available() else None}
    if args.tests:
        with timed(figures, "tests"):
            done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", *ENGINE_TESTS], cwd=REPO,
                                  capture_output=True, text=True)
        figures["tests"] = {"returncode": done.returncode, "tail": done.stdout.strip().splitlines()[-1:]}
    npz = tiny_dataset(work) if args.tiny else Path(args.npz)
    if not npz.is_file():
        raise SystemExit(f"{npz} does not exist; make it with --make-npz")
    ref = dataset_ref(str(npz))
    dataset = open_dataset(ref)
    epochs = 1 if args.tiny else args.epochs
    recipe = dataclasses.replace(RECIPES["resnet18"], epochs=epochs)
    with timed(figures, "train_resnet18"):
        model = train_from_scratch(dataset, training_indices(dataset), architecture="resnet18", recipe=recipe,
                                   device=device, seed=0)
    from engine.metrics import accuracy
    from engine.training import predict

    test = predict(model, dataset.test_images, device=device)
    figures["resnet18"] = {"epochs": epochs, "train_images": int(len(training_indices(dataset))),
                           "test_acc": accuracy(test.predictions, dataset.test_labels.numpy())}
    save_checkpoint(work / "resnet18-original.safetensors", model, {"kind": "original", "dataset": dataset.name,
                    "recipe": recipe.to_dict(), "seed": 0, "metrics": figures["resnet18"]}, overwrite=True)
    rows = []
    method_epochs = {"retrain": {"epochs": epochs}} | ({"wsscl": {"epochs": 1}, "salun": {"epochs": 1}}
                                                         if args.tiny else {})
    for scenario, spec in (("class:3", ForgetSpec(classes=(3,))), ("random:0.1", ForgetSpec(fraction=0.1))):
        split = make_split(dataset, spec)
        reference = None
        for method in ("retrain", "wsscl", "salun"):
            with timed(figures, f"{method} {scenario}"):
                outcome = run_unlearning(method, model, dataset, split, method_epochs.get(method, {}), device=device,
                                         seed=0, reference=reference if reference is not None else
                                         {"UA": 0.0, "RA": 0.0, "TA": 0.0, "MIA": 0.0})
            scores = outcome.evaluation.scores()
            if method == "retrain":
                reference = scores
            gap = 0.0 if method == "retrain" else outcome.avg_gap
            rows.append({"scenario": scenario, "method": method, "forget": spec.to_dict(), "seed": 0, **scores,
                         "avg_gap": gap, "seconds": outcome.result.seconds})
    figures["rows"] = rows
    count = 4 if args.tiny else args.population
    executor = make_executor("inline" if args.tiny and not args.ray else "ray")
    gpus = 0.0 if device.type != "cuda" else 1 / 8
    with timed(figures, f"population {count} small-cnn"):
        try:
            manifest = build_population(executor, dataset=str(npz), kind="shadow", count=count,
                                        out=work / "population", epochs=1 if args.tiny else args.population_epochs,
                                        device=str(device.type), cpus=1, gpus=gpus)
        finally:
            executor.close()
    accuracies = [m["metrics"]["test_acc"] for m in manifest["members"]]
    figures["population"] = {"count": count, "members": len(accuracies), "failures": len(manifest["failures"]),
                             "gpu_per_task": gpus, "executor": executor.name,
                             "test_acc_mean": sum(accuracies) / max(1, len(accuracies))}
    figures["table"], _ = bench_table(rows, device=figures["device"], command="python -m scripts.gpu_check "
                                      + " ".join(sys.argv[1:]))
    return figures


def write_doc(figures: dict, path: Path) -> None:
    lines = ["# The GPU path", "", f"Written by `python -m scripts.gpu_check` on **{figures['device']}** "
             f"(host {figures['host']}, torch {figures['torch']}, CUDA {figures['cuda']})"
             + (" — TINY mode (CPU, a slice of fashion-mini): these figures prove the script, not the GPU." if
                figures["tiny"] else "."), "",
             "## Times (s)", "", "| step | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds:.1f} |" for name, seconds in figures["seconds"].items()]
    resnet, population = figures["resnet18"], figures["population"]
    lines += ["", f"ResNet-18 (CIFAR-style): {resnet['epochs']} epochs on {resnet['train_images']} images, "
              f"test accuracy {resnet['test_acc']:.2f} %.", "",
              f"Population: {population['members']} of {population['count']} small-CNN shadow models "
              f"({population['executor']} executor, {population['gpu_per_task']:g} GPU each), mean test accuracy "
              f"{population['test_acc_mean']:.2f} %, {population['failures']} failed.", "",
              "## Unlearning with the ResNet-18 (seed 0; Avg. Gap against the Retrain above)", "", figures["table"]]
    if "tests" in figures:
        lines += [f"Engine tests: return code {figures['tests']['returncode']}, {' '.join(figures['tests']['tail'])}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--make-npz", type=Path, help="only write full Fashion-MNIST as this .npz, then stop")
    parser.add_argument("--idx-root", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--npz", default="artifacts/fashion-mnist.npz")
    parser.add_argument("--tiny", action="store_true", help="CPU-sized: proves the script end to end")
    parser.add_argument("--ray", action="store_true", help="in --tiny mode, still run the population on Ray")
    parser.add_argument("--tests", action="store_true", help="also run the engine's tests first")
    parser.add_argument("--epochs", type=int, default=15, help="ResNet-18 (and its Retrain) epochs")
    parser.add_argument("--population", type=int, default=32)
    parser.add_argument("--population-epochs", type=int, default=5)
    parser.add_argument("--work", default="artifacts/gpu-check", help="checkpoints and the population go here")
    parser.add_argument("--out", type=Path, default=Path("artifacts/gpu.json"))
    parser.add_argument("--doc", type=Path, default=Path("docs/gpu.md"))
    args = parser.parse_args(argv)
    if args.make_npz is not None:
        return make_npz(args.make_npz, args.idx_root)
    figures = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, default=str))
    write_doc(figures, args.doc)
    print(figures["table"])
    print(f"wrote {args.out} and {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
