"""``python -m engine unlearn``: one run (the bench over many runs lives in engine/cli_bench.py).

    python -m engine unlearn --dataset fashion-mini --forget-classes 3 --method wsscl --seed 0 --json out.json
    python -m engine unlearn --forget-fraction 0.1 --method salun --set lr=0.02 --save-run runs/
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.cli import (TqdmProgress, add_data_arguments, add_forget_arguments, add_output, forget_spec_from, load_data,
                        load_fitting, split_from, write_json)
from engine.cli_types import seed_number


def parse_overrides(pairs: list[str] | None) -> dict:
    """``["lr=0.01", "guidance=hard"]`` → {"lr": 0.01, "guidance": "hard"} (JSON values, else strings)."""
    overrides = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        name, text = pair.split("=", 1)
        try:
            overrides[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            overrides[name.strip()] = text
    return overrides


def unlearn_arguments(parser: argparse.ArgumentParser) -> None:
    from engine.methods import METHODS

    add_data_arguments(parser)
    add_forget_arguments(parser, required=True)
    parser.add_argument("--method", required=True, choices=list(METHODS))
    parser.add_argument("--seed", type=seed_number, default=0)
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    parser.add_argument("--checkpoint", type=Path, help="the model to unlearn from (default: the shipped original)")
    parser.add_argument("--reference", type=Path, help="a Retrain checkpoint for the same forget spec")
    add_output(parser, "--save-run", "folder", metavar="ROOT", help="save checkpoint + run record under ROOT")
    add_output(parser, "--json", "file", help="write the figures here")


def load_model(dataset, checkpoint: Path | None, device):
    """The model to unlearn from: the shipped original, or ``--checkpoint`` if it fits the dataset."""
    from engine.references import load_original

    if checkpoint is None:
        return load_original(dataset, device=device)[0]
    return load_fitting("--checkpoint", checkpoint, dataset, device)[0]


def no_reference(args: argparse.Namespace) -> str:
    """Why the figures come without an Avg. Gap (a reference of another split seed is never used)."""
    return (f"no Retrain reference for this forget set at split seed {args.split_seed}: pass --reference, or "
            "a Retrain trained for it (`python -m engine train --forget-... --split-seed N --out ...`)")


def run_unlearn(args: argparse.Namespace) -> int:
    """Unlearn a forget set with one method; print or write the figures."""
    from engine.methods import make_config
    from engine.training import resolve_device
    from engine.unlearning import run_unlearning

    dataset, spec, device = load_data(args), forget_spec_from(args), resolve_device(args.device)
    split = split_from(args, dataset, spec)
    config = make_config(args.method, forget_kind=spec.setting, **parse_overrides(args.set))
    model = load_model(dataset, args.checkpoint, device)
    reference = load_fitting("--reference", args.reference, dataset, device)[0] if args.reference else None
    with TqdmProgress() as progress:
        outcome = run_unlearning(args.method, model, dataset, split, config, device=device, seed=args.seed,
                                 on_progress=progress, reference=reference, split_seed=args.split_seed)
    payload = {**outcome.evaluation.to_dict(outcome.reference_scores), "avg_gap": outcome.avg_gap,
               "reference": outcome.reference_scores,
               **({} if outcome.reference_scores is not None else {"reference_note": no_reference(args)}),
               "seconds": outcome.result.seconds, "method": args.method,
               "config": outcome.result.config, "seed": args.seed, "forget": spec.to_dict(),
               "dataset": dataset.name, "device": outcome.record["device"]}
    if args.save_run is not None:
        from engine.runs import new_run_dir, save_run

        payload["run_dir"] = str(save_run(new_run_dir(args.save_run, args.method, args.seed, dataset.name), outcome))
    write_json(args.json, payload)
    return 0
