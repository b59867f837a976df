"""``python -m engine bench``: methods × scenarios × seeds, each cell a job on the executor.

    python -m engine bench --methods wsscl salun --scenarios class:1,3,6 random:0.1 --seeds 0 1 2 \
        --out docs/benchmarks [--executor ray [--ray-address HOST:6379]]

Class-wise Avg. Gap uses the shipped Retrain references (their sidecar metrics; their training time is the
Retrain RTE). Other forget specs are retrained once per (spec, split seed) — as jobs too — and cached under
runs/bench-cache/ (git-ignored), so reruns are cheap. Every finished cell is appended to OUT.cells.jsonl as
it arrives: after Ctrl-C or a crash the same command skips the cells already there. A cell that raises is
reported with its config; the others still run and the table is written from them (exit code 1).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from engine.cli import TqdmProgress, add_data_arguments, add_output, write_json
from engine.cli_types import bench_file, integer, seed_number
from engine.cli_unlearn import parse_overrides

BENCH_CACHE = Path("runs/bench-cache")


def parse_scenario(text: str, dataset_name: str = "fashion-mini"):
    """``class:3`` / ``class:1,3,6`` → one ForgetSpec per class; ``class:0+2+6`` → one ForgetSpec forgetting those
    classes together (``class:0+6,2+4`` → two such sets); ``random:0.1`` → a random 10 % spec drawn with
    forget seed 0, ``random:0.1@2`` → the same with forget seed 2 (another random forget set);
    ``samples:mixed-200`` → the shipped hand-picked set of that name (`engine.sample_sets`)."""
    from engine.splits import ForgetSpec

    kind, _, value = text.partition(":")
    try:
        if kind == "class":
            return [ForgetSpec(classes=tuple(int(c) for c in group.split("+"))) for group in value.split(",")]
        if kind == "random":
            fraction, _, forget_seed = value.partition("@")
            return [ForgetSpec(fraction=float(fraction), seed=int(forget_seed or 0))]
        if kind == "samples":
            from engine import sample_sets

            return [ForgetSpec(sample_ids=sample_sets.ids_of(dataset_name, name)) for name in value.split(",")]
    except ValueError as error:
        raise ValueError(f"bad scenario {text!r}: {error}") from None
    raise ValueError(f"bad scenario {text!r}: use class:C[,C...] (C+C+... forgets classes together), random:FRACTION[@FORGET_SEED] or "
                     "samples:NAME[,NAME...] (a shipped hand-picked set, engine/sample_sets.py)")


def gpu_fraction(text: str) -> float:
    """A share of one GPU in [0, 1] (0: the job needs none)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--gpus-per-task {text!r} is not a number in [0, 1]") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"--gpus-per-task {text!r} must lie in [0, 1]")
    return value


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--executor", choices=("inline", "ray"), default="inline",
                        help="inline: one job after another in this process; ray: jobs in parallel on Ray")
    parser.add_argument("--ray-address", help="an existing Ray cluster (default $RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--cpus-per-task", type=integer(1, 256),
                        help="torch threads per job (default: all of this process's for inline, 1 for ray); "
                             "records match across executors at equal values")
    parser.add_argument("--gpus-per-task", type=gpu_fraction, default=0.0,
                        help="GPU fraction per job on a CUDA cluster, e.g. 0.25 (four jobs share one GPU)")


def executor_from(args: argparse.Namespace):
    from engine.executor import make_executor

    return make_executor(args.executor, address=args.ray_address)


def cpus_from(args: argparse.Namespace) -> int:
    import torch

    if args.cpus_per_task is not None:
        if args.cpus_per_task < 1:
            raise ValueError(f"--cpus-per-task must be ≥ 1, got {args.cpus_per_task}")
        return args.cpus_per_task
    return torch.get_num_threads() if args.executor == "inline" else 1


# ----------------------------------------------------------------------------------- the jobs themselves
def reference_job(dataset: dict, forget: dict, split_seed: int, device: str, path: str) -> dict:
    """Train (once) and cache the Retrain reference for a forget spec; its scores and seconds."""
    from engine.checkpoints import read_sidecar
    from engine.executor import open_dataset
    from engine.references import train_and_save
    from engine.splits import ForgetSpec
    from engine.training import resolve_device

    if not Path(path).is_file():
        train_and_save(open_dataset(dataset), Path(path), forget=ForgetSpec.from_dict(forget),
                       device=resolve_device(device), seed=0, split_seed=split_seed)
    record = read_sidecar(path)
    return {"scores": {k: record["metrics"][k] for k in ("UA", "RA", "TA", "MIA")}, "seconds": record["seconds"],
            "source": str(path)}


def cell_job(dataset: dict, checkpoint: str | None, method: str, forget: dict, seed: int, reference: dict,
             overrides: dict, split_seed: int, device: str, audit: bool = False) -> dict:
    """One benchmark cell (see `engine.unlearning.run_cell`) on the shared original model."""
    from engine.executor import open_dataset, open_model
    from engine.splits import ForgetSpec
    from engine.training import resolve_device
    from engine.unlearning import run_cell

    resolved = str(resolve_device(device))
    model = open_model(json.dumps(dataset, sort_keys=True), checkpoint, resolved)
    return run_cell(method, model, open_dataset(dataset), ForgetSpec.from_dict(forget), seed, reference,
                    device=resolved, overrides=overrides, split_seed=split_seed, phi=audit)


def reference_for(dataset, spec, split_seed: int) -> tuple[dict | None, str]:
    """(reference, cache path): the shipped or cached Retrain's figures, or None and where to train it."""
    from engine.checkpoints import read_sidecar
    from engine.references import find_reference

    shipped = find_reference(dataset.name, spec, split_seed=split_seed)  # None unless trained for split_seed
    name = f"{dataset.name}-retrain-" + (f"class-{'-'.join(map(str, spec.classes))}" if spec.classes else
                                         f"random-{spec.fraction:g}-forgetseed{spec.seed}" if spec.fraction
                                         else f"samples-{spec.key()}") + f"-split{split_seed}"
    path = shipped or (BENCH_CACHE / f"{name}.safetensors").resolve()
    if not Path(path).is_file():
        return None, str(path)
    record = read_sidecar(path)
    return ({"scores": {k: record["metrics"][k] for k in ("UA", "RA", "TA", "MIA")}, "seconds": record["seconds"],
             "source": str(path)}, str(path))


# ---------------------------------------------------------------------------------------------- command
def bench_arguments(parser: argparse.ArgumentParser) -> None:
    from engine.methods import METHODS

    add_data_arguments(parser)
    parser.add_argument("--methods", nargs="+", default=[m for m in METHODS if m != "retrain"], choices=list(METHODS),
                        help="methods to run (Retrain's row always comes from the references)")
    parser.add_argument("--scenarios", nargs="+", default=["class:1,3,6", "random:0.1"],
                        help="class:C[,C...] (one scenario, several classes; C+C+... one set of classes forgotten "
                             "together), random:FRACTION[@FORGET_SEED] or "
                             "samples:NAME[,NAME...] (shipped hand-picked sets: one-class-100, mixed-200)")
    parser.add_argument("--seeds", type=seed_number, nargs="+", default=[0, 1, 2])
    parser.add_argument("--paired", action="store_true",
                        help="class scenarios: run the k-th class with the k-th seed only (not every class × seed)")
    parser.add_argument("--set", action="append", metavar="METHOD.KEY=VALUE", help="override a config field")
    parser.add_argument("--checkpoint", type=Path, help="the original model (default: the shipped one)")
    add_output(parser, "--out", "prefix", default=Path("runs/bench/benchmarks"),
               help="writes OUT.md and OUT.json (and OUT.cells.jsonl as cells finish; a rerun resumes from it)")
    parser.add_argument("--audit", action="store_true",
                        help="per-example audit columns: forgetting quality over the seeds against the forget set's "
                             "shipped Retrain population, LiRA vs the shipped shadows (docs/audit.md)")
    parser.add_argument("--merge", type=bench_file, nargs="+", metavar="JSON",
                        help="run nothing: merge the rows of earlier bench JSON files into one table")
    add_executor_arguments(parser)


def run_bench(args: argparse.Namespace) -> int:
    """Methods × scenarios × seeds: UA, RA, TA, MIA-Efficacy, Avg. Gap, RTE; a Markdown table and JSON."""
    from engine.executor import Job, ResultLog, dataset_ref, open_dataset
    from engine.methods import make_config
    from engine.training import device_name, resolve_device
    from engine.unlearning import bench_table

    if args.merge:
        return merge_benches(args.merge, args.out)
    ref = dataset_ref(args.dataset, args.data_root, args.download)
    dataset, device = open_dataset(ref), resolve_device(args.device)
    checkpoint = None if args.checkpoint is None else str(args.checkpoint.resolve())
    overrides: dict[str, dict] = {}
    for pair in args.set or []:
        method, _, rest = pair.partition(".")
        overrides.setdefault(method, {}).update(parse_overrides([rest]))
    cpus, gpus = cpus_from(args), args.gpus_per_task
    plan, specs = [], {}
    for scenario in args.scenarios:
        scenario_specs = parse_scenario(scenario, dataset.name)
        pairs = list(zip(scenario_specs, args.seeds)) if args.paired and len(scenario_specs) > 1 else \
            [(spec, seed) for spec in scenario_specs for seed in args.seeds]
        specs.update({(scenario, spec): None for spec, _ in pairs})
        plan += [(scenario, method, spec, seed) for method in args.methods for spec, seed in pairs]
    for method in args.methods:  # bad overrides fail here, before any job starts
        make_config(method, **overrides.get(method, {}))
    executor = executor_from(args)
    device_text = f"{device_name(device)}, {platform.machine()} {platform.processor() or ''}".strip()
    print(f"bench on {device_text} · executor {args.executor}", flush=True)
    start, failed = time.perf_counter(), []
    try:
        references = _references(executor, ref, dataset, specs, args, cpus, gpus, failed)
        log = ResultLog(_with(args.out, ".cells.jsonl"))
        done = log.read()
        keys, jobs = [], []
        for scenario, method, spec, seed in plan:
            config = make_config(method, forget_kind=spec.setting, **overrides.get(method, {})).to_dict()
            key = json.dumps([dataset.name, args.split_seed, scenario, method, spec.to_dict(), seed, config,
                              checkpoint] + (["audit"] if args.audit else []), sort_keys=True)
            keys.append(key)
            if key not in done and spec in references:
                jobs.append(Job("engine.cli_bench:cell_job", {
                    "dataset": ref, "checkpoint": checkpoint, "method": method, "forget": spec.to_dict(),
                    "seed": seed, "reference": references[spec]["scores"], "overrides": overrides.get(method, {}),
                    "split_seed": args.split_seed, "device": args.device, "audit": args.audit}, key=key, cpus=cpus,
                    gpus=gpus))
        if len(jobs) < len(plan):
            print(f"resuming: {len(plan) - len(jobs)} of {len(plan)} cells already in {log.path}", flush=True)
        progress = TqdmProgress()
        try:
            for result in executor.run(jobs, on_progress=progress):
                scenario = json.loads(result.job.key)[2]
                if result.ok:
                    row = {"scenario": scenario, **result.value}
                    log.append(result.job.key, row)
                    done[result.job.key] = row
                    print(f"{scenario:14s} {row['method']:9s} {_describe(row['forget']):20s} seed {row['seed']} "
                          + _figures(row), flush=True)
                else:
                    failed.append({"job": result.job.key, "error": result.error})
                    print(f"FAILED cell {result.job.describe()}\n{result.error}", file=sys.stderr, flush=True)
        finally:
            progress.close()
    except KeyboardInterrupt:
        print(f"\ninterrupted: the finished cells are in {_with(args.out, '.cells.jsonl')}; "
              "rerun the same command to resume", file=sys.stderr)
        return 130
    finally:
        executor.close()
    rows = []
    for (scenario, spec), _ in specs.items():
        if spec in references:
            reference = references[spec]
            rows.append({"scenario": scenario, "method": "retrain", "forget": spec.to_dict(), "seed": 0,
                         **reference["scores"], "avg_gap": 0.0, "seconds": reference["seconds"],
                         "source": reference["source"]})
    rows += [done[key] for key in keys if key in done]
    rows.sort(key=lambda r: (args.scenarios.index(r["scenario"]), r["method"] != "retrain"))
    command_line = "python -m engine bench " + " ".join(_argv_tail())
    floors = noise_floors(dataset, specs, args.split_seed, checkpoint)
    markdown, summary = bench_table(rows, device=device_text, command=command_line, noise_floors=floors)
    audit = audit_rows(dataset, specs, rows, args.split_seed, checkpoint) if args.audit else []
    if audit:
        markdown += "\n" + audit_table(audit)
    for row in rows:
        row.pop("phi", None)                 # per-example scores stay in the cells log, not in the summary JSON
    args.out.parent.mkdir(parents=True, exist_ok=True)
    _with(args.out, ".md").write_text(markdown)
    write_json(_with(args.out, ".json"), {"device": device_text, "command": command_line, "rows": rows,
                                          "summary": summary, "noise_floors": floors, "audit": audit,
                                          "failed": failed, "executor": args.executor,
                                          "seconds": time.perf_counter() - start})
    print(markdown)
    return 1 if failed else 0


def _references(executor, ref, dataset, specs, args, cpus, gpus, failed) -> dict:
    """Retrain figures per spec: shipped or cached ones read now, missing ones trained as jobs."""
    from engine.executor import Job

    references, jobs = {}, []
    for _, spec in specs:
        if spec in references or any(job.key == spec.describe() for job in jobs):
            continue
        known, path = reference_for(dataset, spec, args.split_seed)
        if known is not None:
            references[spec] = known
        else:
            jobs.append(Job("engine.cli_bench:reference_job", {"dataset": ref, "forget": spec.to_dict(),
                        "split_seed": args.split_seed, "device": args.device, "path": path},
                        key=spec.describe(), cpus=cpus, gpus=gpus))
    by_key = {spec.describe(): spec for _, spec in specs}
    for result in executor.run(jobs):
        if result.ok:
            references[by_key[result.job.key]] = result.value
        else:
            failed.append({"job": result.job.key, "error": result.error})
            print(f"FAILED Retrain reference {result.job.describe()}\n{result.error}", file=sys.stderr, flush=True)
    for (scenario, spec) in specs:
        if spec in references:
            print(f"{scenario:14s} retrain   {spec.describe():20s} "
                  + _figures({**references[spec]["scores"], "avg_gap": 0.0, "seconds": references[spec]["seconds"]}),
                  flush=True)
    return references


def _populations(dataset, spec, split_seed: int, checkpoint):
    """(Retrain population, shadows) shipped for this forget set, each None when there is none trained with the
    original's recipe (they calibrate models of that recipe only; the original's weights do not enter them)."""
    from engine import audit_assets
    from engine.audit_live import recipe_of

    recipe = recipe_of(dataset.name, checkpoint)
    return (audit_assets.retrains(dataset, spec, split_seed=split_seed, recipe=recipe),
            audit_assets.shadows(dataset, split_seed=split_seed, recipe=recipe))


def noise_floors(dataset, specs, split_seed: int, checkpoint) -> dict:
    """scenario → the Retrain noise floor (mean over its forget sets of the Avg. Gap between Retrain seeds), from
    the shipped Retrain populations; scenarios without one are left out."""
    from engine.audit import noise_floor
    from engine.metrics import GAP_KEYS

    from engine import audit_assets
    from engine.audit_live import recipe_of

    recipe, per_scenario = recipe_of(dataset.name, checkpoint), {}
    for scenario, spec in specs:
        retrains = audit_assets.retrains(dataset, spec, split_seed=split_seed, recipe=recipe)   # no shadows needed
        if retrains is not None:
            floor = noise_floor([{k: float(m[k]) for k in GAP_KEYS} for m in retrains.metrics])
            per_scenario.setdefault(scenario, []).append(floor)
    return {scenario: {"mean": float(np.mean([f.mean for f in floors])), "std": float(np.mean([f.std for f in floors])),
                       "retrains": int(floors[0].num_models), "forget_sets": len(floors)}
            for scenario, floors in per_scenario.items()}


def audit_rows(dataset, specs, rows, split_seed: int, checkpoint) -> list[dict]:
    """Per scenario × forget set × method: forgetting quality of its seeds' models against the Retrain
    population (N = seeds, K = Retrains; engine.audit), LiRA per seed against the shadows (mean ± std)."""
    from engine.audit import forgetting_quality
    from engine.audit_run import resolution_ceiling
    from engine.lira import lira_audit
    from engine.metrics import mean_and_std
    from engine.splits import make_split

    out = []
    for scenario, spec in specs:
        retrains, shadows = _populations(dataset, spec, split_seed, checkpoint)
        forget = make_split(dataset, spec, split_seed).forget
        cells: dict[str, list] = {}
        for row in rows:
            if row["method"] != "retrain" and row["scenario"] == scenario and row["forget"] == spec.to_dict() \
                    and "phi" in row:
                cells.setdefault(row["method"], []).append(row)
        for method, members in cells.items():
            phi = np.array([r["phi"] for r in members], dtype=np.float64)
            entry = {"scenario": scenario, "forget": spec.to_dict(), "method": method, "runs": len(members)}
            # whole classes: against the set's Retrains (shadows learned the class without the image); else shadows
            source = retrains if spec.kind == "class" else shadows
            if source is not None:
                variant = "offline" if source is retrains else "online"
                per_seed = [lira_audit(p, source.phi[:, forget], source.trained_on[:, forget], variant=variant)
                            for p in phi]
                entry["lira_auc"], entry["lira_auc_std"] = mean_and_std(a.auc for a in per_seed)
                entry["lira_tpr_1pct"], entry["lira_tpr_1pct_std"] = mean_and_std(
                    a.roc.tpr_at_1pct_fpr for a in per_seed)
                entry["lira_against"] = "retrain population (offline)" if variant == "offline" else "shadows (online)"
            if shadows is not None:
                entry["shadows"] = len(shadows.metrics)
            if retrains is not None and len(members) >= 3:
                def quality_of(keep):
                    return forgetting_quality(
                        phi[keep], retrains.phi[:, forget],
                        retain_accuracy=([members[i]["RA"] for i in keep], [m["RA"] for m in retrains.metrics]),
                        test_accuracy=([members[i]["TA"] for i in keep], [m["TA"] for m in retrains.metrics]))

                everyone = list(range(len(members)))
                quality = quality_of(everyone)
                entry.update(forgetting_quality=quality.score, forget_score=quality.forget_score,
                             retrains=len(retrains.metrics), resolution_runs=quality.num_runs,
                             ceiling=resolution_ceiling(quality.num_runs))
                if len(members) >= 4:
                    # its spread over seeds: the jackknife (leave one seed out, N − 1 runs each) standard error
                    partial = np.array([quality_of([i for i in everyone if i != k]).score for k in everyone])
                    n = len(partial)
                    entry["forgetting_quality_std"] = float(np.sqrt((n - 1) / n * np.sum((partial - partial.mean()) ** 2)))
            out.append(entry)
    return out


def audit_table(audit: list[dict]) -> str:
    from engine.methods import METHODS

    lines = ["Per-example audit (docs/audit.md): forgetting quality of the seeds' models against the forget set's "
             "Retrain population (N = min(seeds, Retrains); ± its jackknife standard error over the seeds; a perfect "
             "unlearner's ceiling at that N beside it), "
             "LiRA per seed (mean ± std): against the shadow models, or for whole classes against the set's Retrains "
             "(a shadow that left an image out still learned its class).", "",
             "| scenario | forget set | method | forgetting quality ↑ | ceiling (σ = 1) | LiRA AUC (0.5 = chance) | "
             "TPR @ 1 % FPR | runs |", "|---|---|---|---|---|---|---|---|"]
    for e in audit:
        quality = f"{e['forgetting_quality']:.3f}" if e.get("forgetting_quality") is not None else "—"
        if e.get("forgetting_quality_std") is not None:
            quality += f" ± {e['forgetting_quality_std']:.3f}"
        ceiling = f"{e['ceiling']['sigma1.0']:.3f}" if e.get("ceiling") else "—"
        lira = f"{e['lira_auc']:.3f} ± {e['lira_auc_std']:.3f}" if "lira_auc" in e else "—"
        tpr = f"{e['lira_tpr_1pct']:.3f} ± {e['lira_tpr_1pct_std']:.3f}" if "lira_tpr_1pct" in e else "—"
        lines.append(f"| {e['scenario']} | {_describe(e['forget'])} | {METHODS[e['method']].label} | {quality} | "
                     f"{ceiling} | {lira} | {tpr} | {e['runs']} |")
    return "\n".join(lines) + "\n"


def merge_benches(paths: list[Path], out: Path) -> int:
    """One table from several bench JSON files (e.g. parts run in parallel); Retrain rows deduplicated."""
    from engine.unlearning import bench_table

    payloads = [json.loads(Path(path).read_text()) for path in paths]
    rows, seen = [], set()
    for payload in payloads:
        for row in payload["rows"]:
            tag = (row["scenario"], json.dumps(row["forget"], sort_keys=True)) if row["method"] == "retrain" else None
            if tag is not None and tag in seen:
                continue
            seen.add(tag)
            rows.append(row)
    devices = sorted({p["device"] for p in payloads})
    commands = [p["command"] for p in payloads]
    markdown, summary = bench_table(rows, device="; ".join(devices), command="` + `".join(commands))
    out.parent.mkdir(parents=True, exist_ok=True)
    _with(out, ".md").write_text(markdown)
    write_json(_with(out, ".json"), {"device": "; ".join(devices), "commands": commands, "rows": rows,
                                     "summary": summary})
    print(markdown)
    return 0


def _with(out: Path, suffix: str) -> Path:
    """OUT + suffix, even when OUT's name has dots (``with_suffix`` would cut "lr0.02-class" to "lr0")."""
    return out.parent / (out.name + suffix)


def _describe(forget: dict) -> str:
    from engine.splits import ForgetSpec

    return ForgetSpec.from_dict(forget).describe()


def _figures(row: dict) -> str:
    return (f"UA {row['UA']:.2f} RA {row['RA']:.2f} TA {row['TA']:.2f} MIA {row['MIA']:.2f} "
            f"gap {row['avg_gap']:.2f} {row['seconds']:.1f}s")


def _argv_tail() -> list[str]:
    argv = sys.argv[1:]
    return argv[1:] if argv and argv[0] == "bench" else argv
