"""Command line: ``python -m engine {train,evaluate,...}``.

    python -m engine train --dataset fashion-mini --out runs/original           # the original model
    python -m engine train --dataset fashion-mini --forget-classes 3 --out runs/retrain-3   # Retrain
    python -m engine evaluate --checkpoint assets/checkpoints/fashion-mini/original.safetensors \
        --forget-classes 3 --json out.json

``--json`` writes the figures with keys UA, RA, TA, MIA, forget_test_acc, seconds, and avg_gap when a
Retrain reference for the forget spec exists (shipped, or given with --reference).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Register a sub-command: ``add_arguments`` fills its parser, the decorated function runs it."""
    def register(run: Callable[[argparse.Namespace], int]):
        COMMANDS[name] = (add_arguments, run)
        return run
    return register


# ------------------------------------------------------------------------------------------- helpers
def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    from engine.data import DATASET_NAMES

    parser.add_argument("--dataset", default="fashion-mini", help=f"one of {', '.join(DATASET_NAMES)}")
    parser.add_argument("--data-root", default=None, help="folder of the dataset files (default $UNLEARNING_LAB_DATA or ./data)")
    parser.add_argument("--download", action="store_true", help="let torchvision download missing files")
    parser.add_argument("--split-seed", type=int, default=0, help="seeds the validation hold-out")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ...")


def add_forget_arguments(parser: argparse.ArgumentParser, required: bool = False) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--forget-classes", type=int, nargs="+", help="forget these whole classes")
    group.add_argument("--forget-fraction", type=float, help="forget a random fraction of the training set, in (0, 1)")
    group.add_argument("--forget-ids", type=Path, help="file of training-pool sample ids (whitespace/comma separated, or JSON list)")
    parser.add_argument("--forget-seed", type=int, default=0, help="seeds the random fraction")


def forget_spec_from(args: argparse.Namespace):
    from engine.splits import ForgetSpec

    if args.forget_classes:
        return ForgetSpec(classes=tuple(args.forget_classes))
    if args.forget_fraction is not None:
        return ForgetSpec(fraction=args.forget_fraction, seed=args.forget_seed)
    if args.forget_ids is not None:
        if not args.forget_ids.is_file():
            raise ValueError(f"--forget-ids file {args.forget_ids} does not exist")
        text = args.forget_ids.read_text().strip()
        try:
            ids = json.loads(text) if text.startswith("[") else [int(tok) for tok in text.replace(",", " ").split()]
        except ValueError as error:
            raise ValueError(f"--forget-ids {args.forget_ids}: not a list of integers ({error})") from None
        return ForgetSpec(sample_ids=tuple(int(i) for i in ids))
    return None


def load_data(args: argparse.Namespace):
    from engine.data import load_dataset

    return load_dataset(args.dataset, root=args.data_root, download=args.download)


def write_json(path: Path | None, payload: dict) -> None:
    from engine.checkpoints import write_json_atomic

    text = json.dumps(payload, indent=2, default=lambda v: v.tolist() if isinstance(v, np.ndarray) else str(v))
    if path is None:
        print(text)
    else:
        write_json_atomic(path, json.loads(text), overwrite=True)
        print(f"wrote {path}")


class TqdmProgress:
    """Progress callback that draws one tqdm bar per stage on stderr."""

    def __init__(self):
        self.bar = None
        self.stage = None

    def __call__(self, progress) -> None:
        from tqdm import tqdm

        if progress.stage != self.stage:
            self.close()
            self.stage = progress.stage
            self.bar = tqdm(total=progress.total, desc=progress.stage, file=sys.stderr, leave=False)
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in progress.metrics.items()}, refresh=False)
        self.bar.update(progress.step - self.bar.n)  # update() honours tqdm's mininterval; refresh() would not

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def reference_scores(dataset_name: str, spec, explicit: Path | None, dataset=None, split=None, device=None):
    """Retrain metrics for ``spec``: from --reference (evaluated now) or the shipped sidecar; else None."""
    from engine.checkpoints import load_checkpoint, read_sidecar
    from engine.evaluation import evaluate
    from engine.references import find_reference

    if explicit is not None:
        model, _ = load_checkpoint(explicit, device=device)
        return evaluate(model, dataset, split, device=device).scores()
    shipped = find_reference(dataset_name, spec)
    if shipped is None:
        return None
    metrics = read_sidecar(shipped).get("metrics", {})
    return {k: metrics[k] for k in ("UA", "RA", "TA", "MIA")} if all(k in metrics for k in ("UA", "RA", "TA", "MIA")) else None


# ------------------------------------------------------------------------------------------ commands
def _train_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    add_forget_arguments(parser)
    parser.add_argument("--architecture", default="small-cnn", help="small-cnn (CPU default) or resnet18")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="checkpoint path (.safetensors; a .json sidecar is written beside it)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")
    parser.add_argument("--json", type=Path, help="write the figures here")


@command("train", _train_arguments)
def run_train(args: argparse.Namespace) -> int:
    """Train the original model, or (with a forget spec) Retrain on the retain set."""
    import dataclasses

    from engine.references import train_and_save
    from engine.training import RECIPES, resolve_device

    dataset, spec, device = load_data(args), forget_spec_from(args), resolve_device(args.device)
    if args.json is not None and args.json.resolve() == args.out.with_suffix(".json").resolve():
        raise ValueError(f"--json {args.json} would overwrite the checkpoint's sidecar; choose another path")
    if args.architecture not in RECIPES:
        raise ValueError(f"unknown architecture {args.architecture!r}; choose one of {', '.join(RECIPES)}")
    recipe = RECIPES[args.architecture]
    if args.epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=args.epochs)
    progress = TqdmProgress()
    start = time.perf_counter()
    path, evaluation = train_and_save(dataset, args.out, forget=spec, architecture=args.architecture, recipe=recipe,
                                      device=device, seed=args.seed, split_seed=args.split_seed,
                                      overwrite=args.overwrite, on_progress=progress)
    progress.close()
    from engine.checkpoints import read_sidecar

    record = read_sidecar(path)
    payload = {**record["metrics"], "seconds": time.perf_counter() - start, "train_seconds": record["seconds"],
               "checkpoint": str(path), "device": record["device"]}
    write_json(args.json, payload)
    return 0


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    add_forget_arguments(parser, required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--reference", type=Path, help="a Retrain checkpoint for the same forget spec (else the shipped one, if any)")
    parser.add_argument("--json", type=Path, help="write the figures here")


@command("evaluate", _evaluate_arguments)
def run_evaluate(args: argparse.Namespace) -> int:
    """All metrics of a checkpoint under a forget spec."""
    from engine.checkpoints import load_checkpoint
    from engine.evaluation import evaluate
    from engine.models import spec_for
    from engine.splits import make_split
    from engine.training import resolve_device

    dataset, spec, device = load_data(args), forget_spec_from(args), resolve_device(args.device)
    split = make_split(dataset, spec, args.split_seed)
    start = time.perf_counter()
    from engine.checkpoints import read_sidecar

    architecture = read_sidecar(args.checkpoint).get("model", {}).get("architecture", "small-cnn") \
        if args.checkpoint.is_file() else "small-cnn"
    model, _ = load_checkpoint(args.checkpoint, expected=spec_for(dataset, architecture), device=device)
    evaluation = evaluate(model, dataset, split, device=device)
    reference = reference_scores(dataset.name, spec, args.reference, dataset, split, device)
    payload = {**evaluation.to_dict(reference), "seconds": time.perf_counter() - start,
               "forget": spec.to_dict(), "dataset": dataset.name, "checkpoint": str(args.checkpoint)}
    write_json(args.json, payload)
    return 0


def main(argv: list[str] | None = None) -> int:
    _load_extra_commands()
    parser = argparse.ArgumentParser(prog="python -m engine", description="The machine-unlearning engine.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, run) in COMMANDS.items():
        sub = commands.add_parser(name, help=(run.__doc__ or "").strip().splitlines()[0])
        add_arguments(sub)
        sub.set_defaults(run=run)
    args = parser.parse_args(argv)
    from engine.checkpoints import CheckpointError

    try:
        return args.run(args)
    except (ValueError, FileNotFoundError, FileExistsError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _load_extra_commands() -> None:
    """Commands defined in other modules register themselves on import (e.g. unlearn, bench)."""
    import importlib

    for module in ("engine.cli_unlearn", "engine.cli_bench", "engine.cli_scale"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise
