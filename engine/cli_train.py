"""``python -m engine train`` (the original model, or Retrain) and ``python -m engine evaluate`` (all metrics).

``--json`` writes the figures with keys UA, RA, TA, MIA, forget_test_acc, seconds, and avg_gap when a Retrain
reference for the forget spec exists (shipped, or given with --reference).
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from engine.cli import (TqdmProgress, add_data_arguments, add_forget_arguments, add_output, forget_spec_from, load_data,
                        load_fitting, split_from, write_json)
from engine.cli_types import MAX_EPOCHS, integer, seed_number


def architecture(text: str) -> str:
    from engine.models import ARCHITECTURES

    if text not in ARCHITECTURES:
        raise argparse.ArgumentTypeError(f"unknown architecture {text!r}; choose one of {', '.join(ARCHITECTURES)}")
    return text


def recipe_name(text: str) -> str:
    from engine.training import RECIPES

    if text not in RECIPES:
        raise argparse.ArgumentTypeError(f"unknown recipe {text!r}; choose one of {', '.join(RECIPES)}")
    return text


def train_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    add_forget_arguments(parser)
    parser.add_argument("--architecture", type=architecture, default="small-cnn",
                        help="small-cnn (CPU default) or resnet18")
    parser.add_argument("--recipe", type=recipe_name,
                        help="a named training recipe (default: the architecture's own; small-cnn-classic = the "
                             "previous 20-epoch fp32 recipe, kept for comparison)")
    parser.add_argument("--epochs", type=integer(1, MAX_EPOCHS), help="override the recipe's epochs")
    parser.add_argument("--seed", type=seed_number, default=0)
    add_output(parser, "--out", "checkpoint", required=True,
               help="checkpoint path (.safetensors; a .json sidecar is written beside it)")
    parser.add_argument("--overwrite", dest="force", action="store_true", help=argparse.SUPPRESS)  # the old name
    add_output(parser, "--json", "file", help="write the figures here")


def run_train(args: argparse.Namespace) -> int:
    """Train the original model, or (with a forget spec) Retrain on the retain set."""
    from engine.checkpoints import read_sidecar
    from engine.references import train_and_save
    from engine.training import RECIPES, resolve_device

    dataset, spec, device = load_data(args), forget_spec_from(args), resolve_device(args.device)
    if spec is not None:
        split_from(args, dataset, spec)           # a spec that does not fit the dataset: refused before training
    recipe = RECIPES[args.recipe or args.architecture]
    if args.epochs is not None:
        recipe = dataclasses.replace(recipe, epochs=args.epochs)
    start = time.perf_counter()
    with TqdmProgress() as progress:
        path, _ = train_and_save(dataset, args.out, forget=spec, architecture=args.architecture, recipe=recipe,
                                 device=device, seed=args.seed, split_seed=args.split_seed, overwrite=args.force,
                                 on_progress=progress)
    record = read_sidecar(path)
    payload = {**record["metrics"], "seconds": time.perf_counter() - start, "train_seconds": record["seconds"],
               "checkpoint": str(path), "device": record["device"]}
    write_json(args.json, payload)
    return 0


def evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    add_forget_arguments(parser, required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--reference", type=Path,
                        help="a Retrain checkpoint for the same forget spec (else the shipped one, if any)")
    add_output(parser, "--json", "file", help="write the figures here")


def run_evaluate(args: argparse.Namespace) -> int:
    """All metrics of a checkpoint under a forget spec."""
    from engine.evaluation import evaluate
    from engine.training import resolve_device

    dataset, spec, device = load_data(args), forget_spec_from(args), resolve_device(args.device)
    split = split_from(args, dataset, spec)
    start = time.perf_counter()
    model, _ = load_fitting("--checkpoint", args.checkpoint, dataset, device)
    reference_model = load_fitting("--reference", args.reference, dataset, device)[0] if args.reference else None
    evaluation = evaluate(model, dataset, split, device=device)
    reference = reference_scores(dataset.name, spec, reference_model, dataset, split, device,
                                 split_seed=args.split_seed)
    payload = {**evaluation.to_dict(reference), "seconds": time.perf_counter() - start,
               "forget": spec.to_dict(), "dataset": dataset.name, "checkpoint": str(args.checkpoint)}
    write_json(args.json, payload)
    return 0


def reference_scores(dataset_name: str, spec, reference_model, dataset=None, split=None, device=None, *,
                     split_seed: int = 0):
    """Retrain metrics for ``spec``: of the --reference model (evaluated now) or the shipped sidecar; else None."""
    from engine.checkpoints import read_sidecar
    from engine.evaluation import evaluate
    from engine.references import find_reference

    if reference_model is not None:
        return evaluate(reference_model, dataset, split, device=device).scores()
    shipped = find_reference(dataset_name, spec, split_seed=split_seed)
    if shipped is None:
        return None
    metrics = read_sidecar(shipped).get("metrics", {})
    keys = ("UA", "RA", "TA", "MIA")
    return {k: metrics[k] for k in keys} if all(k in metrics for k in keys) else None
