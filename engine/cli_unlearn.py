"""``python -m engine unlearn`` (one run) and ``python -m engine bench`` (methods × scenarios × seeds).

    python -m engine unlearn --dataset fashion-mini --forget-classes 3 --method wsscl --seed 0 --json out.json
    python -m engine unlearn --forget-fraction 0.1 --method salun --set lr=0.02 --save-run runs/
    python -m engine bench --methods wsscl salun --scenarios class:1,3,6 random:0.1 --seeds 0 1 2 \
        --out docs/benchmarks

Class-wise Avg. Gap uses the shipped Retrain references (their sidecar metrics; their training time is the
Retrain RTE). Other forget specs are retrained once per (spec, split seed) and cached under
runs/bench-cache/ (git-ignored), so reruns are cheap.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from engine.cli import (TqdmProgress, add_data_arguments, add_forget_arguments, add_output, forget_spec_from, load_data,
                        load_fitting, split_from, write_json)
from engine.cli_types import bench_file, seed_number

BENCH_CACHE = Path("runs/bench-cache")


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


def run_unlearn(args: argparse.Namespace) -> int:
    """Unlearn a forget set with one method; print or write the figures."""
    from engine.methods import make_config
    from engine.training import resolve_device
    from engine.unlearning import run_unlearning

    dataset, spec, device = load_data(args), forget_spec_from(args), resolve_device(args.device)
    split = split_from(args, dataset, spec)
    config = make_config(args.method, forget_kind=spec.kind, **parse_overrides(args.set))
    model = load_model(dataset, args.checkpoint, device)
    reference = load_fitting("--reference", args.reference, dataset, device)[0] if args.reference else None
    with TqdmProgress() as progress:
        outcome = run_unlearning(args.method, model, dataset, split, config, device=device, seed=args.seed,
                                 on_progress=progress, reference=reference, split_seed=args.split_seed)
    payload = {**outcome.evaluation.to_dict(outcome.reference_scores), "avg_gap": outcome.avg_gap,
               "reference": outcome.reference_scores, "seconds": outcome.result.seconds, "method": args.method,
               "config": outcome.result.config, "seed": args.seed, "forget": spec.to_dict(),
               "dataset": dataset.name, "device": outcome.record["device"]}
    if args.save_run is not None:
        from engine.runs import new_run_dir, save_run

        payload["run_dir"] = str(save_run(new_run_dir(args.save_run, args.method, args.seed, dataset.name), outcome))
    write_json(args.json, payload)
    return 0


# --------------------------------------------------------------------------------------------- bench
def parse_scenario(text: str):
    """``class:3`` / ``class:1,3,6`` → one ForgetSpec per class; ``random:0.1`` → a random 10 % spec drawn with
    forget seed 0, ``random:0.1@2`` → the same with forget seed 2 (another random forget set)."""
    from engine.splits import ForgetSpec

    kind, _, value = text.partition(":")
    try:
        if kind == "class":
            return [ForgetSpec(classes=(int(c),)) for c in value.split(",")]
        if kind == "random":
            fraction, _, forget_seed = value.partition("@")
            return [ForgetSpec(fraction=float(fraction), seed=int(forget_seed or 0))]
    except ValueError as error:
        raise ValueError(f"bad scenario {text!r}: {error}") from None
    raise ValueError(f"bad scenario {text!r}: use class:C[,C...] or random:FRACTION[@FORGET_SEED]")


def reference_for(dataset, spec, split_seed: int, device) -> tuple[dict, float, str]:
    """(Retrain scores, Retrain seconds, source) for a spec: shipped, cached, or trained now and cached."""
    from engine.checkpoints import read_sidecar
    from engine.references import find_reference, train_and_save

    shipped = find_reference(dataset.name, spec) if split_seed == 0 else None
    if shipped is not None:
        record = read_sidecar(shipped)
        return {k: record["metrics"][k] for k in ("UA", "RA", "TA", "MIA")}, record["seconds"], str(shipped)
    name = f"{dataset.name}-retrain-" + (f"class-{'-'.join(map(str, spec.classes))}" if spec.classes else
                                         f"random-{spec.fraction:g}-forgetseed{spec.seed}") + f"-split{split_seed}"
    path = BENCH_CACHE / f"{name}.safetensors"
    if not path.is_file():
        train_and_save(dataset, path, forget=spec, device=device, seed=0, split_seed=split_seed)
    record = read_sidecar(path)
    return {k: record["metrics"][k] for k in ("UA", "RA", "TA", "MIA")}, record["seconds"], str(path)


def bench_arguments(parser: argparse.ArgumentParser) -> None:
    from engine.methods import METHODS

    add_data_arguments(parser)
    parser.add_argument("--methods", nargs="+", default=[m for m in METHODS if m != "retrain"], choices=list(METHODS),
                        help="methods to run (Retrain's row always comes from the references)")
    parser.add_argument("--scenarios", nargs="+", default=["class:1,3,6", "random:0.1"],
                        help="class:C[,C...] (one scenario, several classes) or random:FRACTION[@FORGET_SEED]")
    parser.add_argument("--seeds", type=seed_number, nargs="+", default=[0, 1, 2])
    parser.add_argument("--paired", action="store_true",
                        help="class scenarios: run the k-th class with the k-th seed only (not every class × seed)")
    parser.add_argument("--set", action="append", metavar="METHOD.KEY=VALUE", help="override a config field")
    add_output(parser, "--out", "prefix", default=Path("runs/bench/benchmarks"), help="writes OUT.md and OUT.json")
    parser.add_argument("--merge", type=bench_file, nargs="+", metavar="JSON",
                        help="run nothing: merge the rows of earlier bench JSON files into one table")


def run_bench(args: argparse.Namespace) -> int:
    """Methods × scenarios × seeds: UA, RA, TA, MIA-Efficacy, Avg. Gap, RTE; a Markdown table and JSON."""
    from engine.unlearning import bench_table, run_cell
    from engine.references import load_original
    from engine.training import device_name, resolve_device

    if args.merge:
        return merge_benches(args.merge, args.out)
    dataset, device = load_data(args), resolve_device(args.device)
    model, _ = load_original(dataset, device=device)
    overrides: dict[str, dict] = {}
    for pair in args.set or []:
        method, _, rest = pair.partition(".")
        overrides.setdefault(method, {}).update(parse_overrides([rest]))
    rows, references = [], {}
    device_text = f"{device_name(device)}, {platform.machine()} {platform.processor() or ''}".strip()
    print(f"bench on {device_text}", flush=True)
    start = time.perf_counter()
    for scenario in args.scenarios:
        specs = parse_scenario(scenario)
        pairs = list(zip(specs, args.seeds)) if args.paired and len(specs) > 1 else \
            [(spec, seed) for spec in specs for seed in args.seeds]
        for spec in dict.fromkeys(spec for spec, _ in pairs):
            references[spec] = reference_for(dataset, spec, args.split_seed, device)
            scores, seconds, source = references[spec]
            rows.append({"scenario": scenario, "method": "retrain", "forget": spec.to_dict(), "seed": 0,
                         **scores, "avg_gap": 0.0, "seconds": seconds, "source": source})
            print(f"{scenario:14s} retrain   {spec.describe():20s} " + _figures(rows[-1]), flush=True)
        for method in args.methods:
            for spec, seed in pairs:
                row = run_cell(method, model, dataset, spec, seed, references[spec][0], device=device,
                               overrides=overrides.get(method, {}), split_seed=args.split_seed)
                rows.append({"scenario": scenario, **row})
                print(f"{scenario:14s} {method:9s} {spec.describe():20s} seed {seed} " + _figures(row), flush=True)
    command_line = "python -m engine bench " + " ".join(_argv_tail(args))
    markdown, summary = bench_table(rows, device=device_text, command=command_line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    _with(args.out, ".md").write_text(markdown)
    write_json(_with(args.out, ".json"), {"device": device_text, "command": command_line, "rows": rows,
                                               "summary": summary, "seconds": time.perf_counter() - start})
    print(markdown)
    return 0


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


def _figures(row: dict) -> str:
    return (f"UA {row['UA']:.2f} RA {row['RA']:.2f} TA {row['TA']:.2f} MIA {row['MIA']:.2f} "
            f"gap {row['avg_gap']:.2f} {row['seconds']:.1f}s")


def _argv_tail(args: argparse.Namespace) -> list[str]:
    import sys

    argv = sys.argv[1:]
    return argv[1:] if argv and argv[0] == "bench" else argv
