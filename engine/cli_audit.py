"""``python -m engine audit``: is each forget example really forgotten? (engine/audit_run.py does the work)

    python -m engine audit --forget-classes 3 --method salun --runs 8 --population runs/pop-3 --json audit.json
    python -m engine audit --forget-ids ids.txt --method wsscl --runs 1 --shadows runs/shadow --json a.json
    python -m engine audit --forget-classes 3 --method original --runs 8 --population runs/pop-3   # sanity check
    python -m engine audit --forget-classes 3 --method retrain --runs 8 --population runs/pop-3    # the other end

Without ``--population``: the forget set's shipped population (assets/populations, built by
``python -m scripts.build_populations``: every single class, two random 10 % sets, the hand-picked sample sets) when
the audit runs from the shipped original; otherwise it is built first, in runs/audit/<dataset>-<forget key>[-splitS]
(``--population-size`` members, resumed on a rerun). Without ``--shadows`` the shipped shadow models are used for
online LiRA when they match (``--no-shadows``: offline LiRA against the Retrains instead).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from engine.cli import TqdmProgress, UsageError, add_data_arguments, add_forget_arguments, add_output, \
    forget_spec_from, split_from, write_json
from engine.cli_bench import add_executor_arguments, cpus_from, executor_from
from engine.cli_types import integer, seed_number
from engine.cli_unlearn import parse_overrides

POPULATIONS = Path("runs/audit")


def audit_arguments(parser: argparse.ArgumentParser) -> None:
    from engine.methods import METHODS

    add_data_arguments(parser)
    add_forget_arguments(parser, required=True)
    parser.add_argument("--method", required=True, choices=["original", *METHODS],
                        help="original: the model before any unlearning; retrain: independent Retrains")
    parser.add_argument("--checkpoint", type=Path, help="the model to unlearn from (default: the shipped original)")
    parser.add_argument("--runs", type=integer(1, 1024), default=8,
                        help="unlearning runs N (seeds SEED..SEED+N-1); N < 3 gives LiRA only")
    parser.add_argument("--seed", type=seed_number, default=1000,
                        help="first run's seed (1000 keeps --method retrain apart from a population's 0..K-1)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config field (repeatable)")
    parser.add_argument("--population", type=Path, help="folder of the Retrain population of this forget set")
    parser.add_argument("--population-size", type=integer(2, 1024), default=8,
                        help="members to build when the population folder has none")
    parser.add_argument("--epochs", type=integer(1, 1000), help="recipe epochs for a population built here")
    parser.add_argument("--shadows", type=Path, help="folder of a shadow population (online LiRA; default: the "
                                                      "shipped shadows when they match)")
    parser.add_argument("--no-shadows", action="store_true", help="offline LiRA against the Retrain population")
    add_output(parser, "--json", "file", help="write the audit here")
    add_executor_arguments(parser)


def _population(args, spec, executor, progress) -> Path:
    """The Retrain population's folder, built (or completed) with the executor when it holds no manifest."""
    from engine.population import build_population

    folder = args.population or POPULATIONS / (f"{Path(args.dataset).stem}-{spec.key()}"
                                               + (f"-split{args.split_seed}" if args.split_seed else ""))
    if not (folder / "population.json").is_file():
        build_population(executor, dataset=args.dataset, kind="retrain", count=args.population_size, out=folder,
                         forget=spec.to_dict(), epochs=args.epochs, split_seed=args.split_seed,
                         data_root=args.data_root, device=args.device, cpus=cpus_from(args),
                         gpus=args.gpus_per_task, on_progress=progress)
    return folder


def _check_population(scores, kind: str, spec, split_seed: int, flag: str, folder: Path) -> None:
    manifest = scores.manifest
    if manifest.get("kind") != kind:
        raise UsageError(f"{flag} {folder}: a {manifest.get('kind')} population, not a {kind} one")
    if int(manifest.get("split_seed", 0)) != split_seed:
        raise UsageError(f"{flag} {folder}: built at split seed {manifest.get('split_seed')}, not {split_seed}")
    from engine.splits import ForgetSpec

    if kind == "retrain" and (not manifest.get("forget") or ForgetSpec.from_dict(manifest["forget"]) != spec):
        raise UsageError(f"{flag} {folder}: the Retrains of forget set {manifest.get('forget')}, "
                         f"not {spec.to_dict()}")


def run_audit(args: argparse.Namespace) -> int:
    """N unlearning runs of a method against a Retrain population: forgetting quality, LiRA, noise floor."""
    from engine.audit_run import audit_figures, population_scores, run_jobs
    from engine.executor import dataset_ref, open_dataset
    from engine.training import resolve_device

    start = time.perf_counter()
    ref = dataset_ref(args.dataset, args.data_root, args.download)
    try:
        dataset = open_dataset(ref)
    except (ValueError, FileNotFoundError) as error:
        raise UsageError(f"--dataset {args.dataset}: {error}") from None
    spec = forget_spec_from(args)
    split = split_from(args, dataset, spec)
    device = resolve_device(args.device)
    overrides = parse_overrides(args.set)
    if args.method == "original" and overrides:
        raise UsageError("--set: the original model has no config to override")
    executor, progress = executor_from(args), TqdmProgress()
    if args.shadows is not None and args.no_shadows:
        raise UsageError("--shadows and --no-shadows exclude each other")
    from engine import audit_assets

    # the shipped populations calibrate models of their recipe: used only when the original was trained with it
    from engine.audit_live import recipe_of

    shipped_recipe = recipe_of(dataset.name, None if args.checkpoint is None else str(args.checkpoint))
    try:
        retrains = None
        if args.population is None and shipped_recipe is not None and args.epochs is None:
            retrains = audit_assets.retrains(dataset, spec, split_seed=args.split_seed, recipe=shipped_recipe)
        if retrains is not None:
            folder = audit_assets.ROOT / dataset.name / retrains.manifest["shipped"]
        else:
            folder = _population(args, spec, executor, progress)
            retrains = population_scores(folder, dataset, device=device)
        _check_population(retrains, "retrain", spec, args.split_seed, "--population", folder)
        shadows, shadows_source = None, None
        if args.shadows is not None:
            shadows, shadows_source = population_scores(args.shadows, dataset, device=device), str(args.shadows)
            _check_population(shadows, "shadow", spec, args.split_seed, "--shadows", args.shadows)
        elif not args.no_shadows and shipped_recipe is not None:
            shadows = audit_assets.shadows(dataset, split_seed=args.split_seed, recipe=shipped_recipe)
            shadows_source = None if shadows is None else str(audit_assets.ROOT / dataset.name / shadows.manifest["shipped"])
        seeds = [args.seed + i for i in range(args.runs)]
        if args.method == "retrain":
            taken = sorted({m["seed"] for m in retrains.manifest["members"]} & set(seeds))
            if taken:
                raise UsageError(f"--seed {args.seed}: seeds {taken} are the population's own Retrains; "
                                 "an independent Retrain needs other seeds")
            # the same recipe as the population's members, unless asked otherwise
            overrides.setdefault("epochs", retrains.manifest["recipe"]["epochs"])
        phi_seconds = time.perf_counter() - start
        runs = run_jobs(executor, dataset=ref, checkpoint=None if args.checkpoint is None else
                        str(args.checkpoint.resolve()), method=args.method, forget=spec.to_dict(), seeds=seeds,
                        split_seed=args.split_seed, overrides=overrides, device=args.device, cpus=cpus_from(args),
                        gpus=args.gpus_per_task, on_progress=progress)
    finally:
        progress.close()
        executor.close()
    figures = audit_figures(runs, retrains, split.forget, shadows=shadows, method=args.method,
                            whole_classes=spec.kind == "class")
    payload = {"method": args.method, "dataset": dataset.name, "forget": spec.to_dict(), "split_seed": args.split_seed,
               "seeds": seeds, "config_overrides": overrides, "population": str(folder),
               "shadows": shadows_source, **figures,
               "run_seconds": [run["seconds"] for run in runs[:figures["distinct_unlearned_models"]]],
               "population_seconds": phi_seconds, "seconds": time.perf_counter() - start, "device": str(device)}
    write_json(args.json, payload)
    return 0
