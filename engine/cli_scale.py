"""``python -m engine population`` (many independently trained models) and ``python -m engine tune`` (Optuna).

    python -m engine population --kind retrain --dataset fashion-mini --forget-classes 3 --count 8 --out runs/pop-3
    python -m engine population --kind shadow --count 32 --out runs/shadow --executor ray --gpus-per-task 0.25
    python -m engine tune --method ga --setting class --trials 24 --storage sqlite:///runs/tune.db [--executor ray]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.cli import TqdmProgress, add_data_arguments, add_forget_arguments, add_output, forget_spec_from, write_json
from engine.cli_types import integer, seed_number
from engine.cli_bench import add_executor_arguments, cpus_from, executor_from


def population_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    add_forget_arguments(parser)
    parser.add_argument("--kind", choices=("retrain", "shadow"), required=True,
                        help="retrain: N Retrains of the forget set; shadow: N models on random halves of the pool")
    parser.add_argument("--count", type=integer(1, 10_000), required=True, help="how many members")
    parser.add_argument("--seed", type=seed_number, default=0, help="member i uses seed SEED + i")
    parser.add_argument("--architecture", default="small-cnn")
    parser.add_argument("--epochs", type=integer(1, 1000), help="override the recipe's epochs")
    add_output(parser, "--out", "folder", required=True, help="folder of the members (a rerun resumes it)")
    add_executor_arguments(parser)


def run_population(args: argparse.Namespace) -> int:
    """Train N Retrains (different seeds) or N shadow models (random halves), stored with sidecars."""
    from engine.population import build_population

    spec = forget_spec_from(args)
    if args.kind == "shadow" and spec is not None:
        raise ValueError("--kind shadow trains on random halves of the whole pool: drop the forget options")
    progress = TqdmProgress()
    executor = executor_from(args)
    try:
        manifest = build_population(
            executor, dataset=args.dataset, kind=args.kind, count=args.count, out=args.out,
            forget=spec.to_dict() if spec is not None else None, seed=args.seed, architecture=args.architecture,
            epochs=args.epochs, split_seed=args.split_seed, data_root=args.data_root, device=args.device,
            cpus=cpus_from(args), gpus=args.gpus_per_task, on_progress=progress,
            on_failure=lambda r: print(f"FAILED member {r.job.describe()}\n{r.error}", file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished members are in {args.out}; rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        progress.close()
        executor.close()
    print(f"{len(manifest['members'])} of {args.count} members in {args.out}"
          + (f"; {len(manifest['failures'])} failed" if manifest["failures"] else ""))
    return 1 if manifest["failures"] else 0


def tune_arguments(parser: argparse.ArgumentParser) -> None:
    from engine.tuning import SETTINGS, SPACES

    add_data_arguments(parser)
    parser.add_argument("--method", required=True, choices=list(SPACES))
    parser.add_argument("--setting", required=True, choices=list(SETTINGS))
    parser.add_argument("--trials", type=integer(1, 10_000), required=True, help="finished trials the study should hold")
    parser.add_argument("--storage", default="sqlite:///runs/tune.db",
                        help="Optuna storage URL: a rerun resumes the study kept there")
    parser.add_argument("--study", help="study name (default DATASET-METHOD-SETTING)")
    parser.add_argument("--sampler-seed", type=seed_number, default=0)
    parser.add_argument("--checkpoint", type=Path, help="the original model (default: the shipped one)")
    parser.add_argument("--parallel", type=integer(1, 1024), help="trials in flight at once (default 1 inline, #CPUs on ray)")
    add_output(parser, "--report", "file", help="write the trials table (Markdown) here")
    parser.add_argument("--apply", action="store_true", help="record the chosen point as the method's defaults")
    parser.add_argument("--enqueue", type=json.loads, action="append", default=[], metavar="JSON",
                        help="a point ({field: value}) to try early in a new study (after the current default)")
    add_output(parser, "--json", "file", help="write the chosen point and its figures here")
    add_executor_arguments(parser)


def run_tune(args: argparse.Namespace) -> int:
    """Tune a method's defaults for a setting with Optuna (TPE, pruning), on validation data only."""
    import os

    from engine.tuning import choose, chosen_params, record_choice, run_study, trials_table

    if args.storage.startswith("sqlite:///"):
        Path(args.storage[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    executor = executor_from(args)
    cpus = cpus_from(args)
    parallel = args.parallel or (1 if args.executor == "inline" else max(1, (os.cpu_count() or 1) // cpus))
    progress = TqdmProgress()
    try:
        study = run_study(args.method, args.setting, args.trials, executor=executor, storage=args.storage,
                          study_name=args.study, seed=args.sampler_seed, dataset=args.dataset,
                          data_root=args.data_root, checkpoint=None if args.checkpoint is None else
                          str(args.checkpoint.resolve()), device=args.device, parallel=parallel, cpus=cpus,
                          on_progress=progress, enqueue=tuple(args.enqueue))
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished trials are kept in {args.storage}; rerun to resume", file=sys.stderr)
        return 130
    finally:
        progress.close()
        executor.close()
    table = trials_table(study, args.method, args.setting)
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(table)
    best = choose(study, args.setting, args.method)
    if best is None:
        print("error: no trial finished", file=sys.stderr)
        return 1
    payload = {"method": args.method, "setting": args.setting, "study": study.study_name, "trial": best.number,
               "params": chosen_params(best), "score": best.value, "forgets": best.user_attrs.get("forgets"),
               "cells": best.user_attrs.get("cells"), "trials": len(study.trials)}
    if args.apply:
        payload["recorded_in"] = str(record_choice(args.method, args.setting, chosen_params(best)))
    print(table)
    write_json(args.json, payload)
    return 0
