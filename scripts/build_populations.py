"""Build the audit's shipped populations: per-example scores of K Retrains per forget set and of M shadows.

    python -m scripts.build_populations                      # everything below, resumable
    python -m scripts.build_populations --only shadow random-0.1@0 --executor ray

What is built (docs/audit.md says why these sizes), each member trained with the shipped original's recipe through
`engine.population.build_population` on the chosen executor, into ``--work`` (weights, not shipped), then
reduced to compact assets in ``--out`` (default ``assets/populations/<dataset>/``):

- ``shadow``: M models, member i on a seeded random half of the training pool (seed i). Shipped: φ of every
  member on every training-pool image (float32, M × P) and which half it trained on (bit-packed).
- ``class-C`` (C = 0..9), ``random-0.1@S`` (S = 0, 1), ``samples-NAME`` (the `engine.sample_sets`): K Retrains of
  the forget set, seeds 0..K−1. Shipped: φ of every member on the forget set only (K × n) and each member's
  UA / RA / TA / MIA (the noise floor and the forgetting-quality ratios read them).

Each asset is ``NAME.npz`` + ``NAME.json`` (kind, forget set, recipe, members' seeds and metrics, training
seconds, device, library versions, the original's sha256, the command). `engine.audit_run.shipped_population`
loads them; the app's audit and ``python -m engine audit`` use them when the forget set matches.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CLASSES = tuple(range(10))
RANDOM_SEEDS = (0, 1)


def plan(dataset_name: str) -> dict:
    """name → forget dict (None for the shadows), in build order: what the app and the bench need first."""
    from engine import sample_sets

    names = {"shadow": None}
    names.update({f"random-0.1@{s}": {"fraction": 0.1, "seed": s} for s in RANDOM_SEEDS[:1]})
    names.update({f"samples-{n}": {"sample_ids": list(ids["ids"])} for n, ids in sample_sets.load(dataset_name).items()})
    names.update({f"random-0.1@{s}": {"fraction": 0.1, "seed": s} for s in RANDOM_SEEDS[1:]})
    names.update({f"class-{c}": {"classes": [c]} for c in CLASSES})
    return names


def write_sample_sets(data, original, out: Path, seed: int) -> None:
    from engine import sample_sets
    from engine.checkpoints import write_json_atomic
    from engine.splits import training_indices
    import torch

    from engine.training import predict

    path = out / sample_sets.FILE
    if path.is_file():
        return
    pool = training_indices(data, 0)
    predictions = predict(original, data.train_images, device=torch.device("cpu")).predictions
    labels = data.train_labels.numpy()
    sets = {}
    for name, rule in sample_sets.RULES.items():
        ids = sample_sets.draw(name, pool, labels, predictions, seed)
        wrong = int(np.sum(predictions[ids] != labels[ids]))
        sets[name] = {"ids": ids, "rule": rule, "seed": seed, "classes": sorted({int(labels[i]) for i in ids}),
                      "original_wrong": wrong, "original_right": len(ids) - wrong}
    write_json_atomic(path, {"dataset": data.name, "split_seed": 0, "drawn_by": "engine.sample_sets.draw",
                             "sets": sets}, overwrite=True)
    print(f"sample sets → {path}: " + ", ".join(f"{n} ({len(s['ids'])}, {s['original_wrong']} wrong)"
                                                for n, s in sets.items()), flush=True)


def compact(name: str, folder: Path, data, forget: dict | None, out: Path, original_sha: str, command: str) -> None:
    """The population in ``folder`` reduced to ``out/NAME.npz`` + ``.json`` (scores, not weights)."""
    import torch

    from engine.audit_run import population_scores
    from engine.checkpoints import read_sidecar, versions, write_json_atomic
    from engine.splits import ForgetSpec, make_split

    scores = population_scores(folder, data, device=torch.device("cpu"))
    manifest = scores.manifest
    members = []
    for m in manifest["members"]:
        record = read_sidecar(folder / m["checkpoint"])
        members.append({"member": m["member"], "seed": m["seed"], "metrics": m["metrics"],
                        "seconds": record.get("seconds"), "device": record.get("device"),
                        "weights_sha256": record.get("sha256")})
    meta = {"name": name, "kind": manifest["kind"], "dataset": data.name, "split_seed": manifest["split_seed"],
            "forget": None if forget is None else ForgetSpec.from_dict(forget).to_dict(), "architecture": manifest["architecture"], "recipe": manifest["recipe"],
            "count": len(members), "members": members, "original_sha256": original_sha, "versions": versions(),
            "built_by": command, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if forget is None:
        arrays = {"phi": scores.phi.astype(np.float32), "trained_on": np.packbits(scores.trained_on, axis=1)}
        meta["pool_size"] = int(scores.phi.shape[1])
        meta["phi_on"] = "every training-pool image (P ids, in order)"
    else:
        ids = make_split(data, ForgetSpec.from_dict(forget), manifest["split_seed"]).forget
        if scores.trained_on[:, ids].any():
            raise ValueError(f"{name}: a Retrain trained on a forget example")
        arrays = {"phi": scores.phi[:, ids].astype(np.float32), "forget_ids": ids.astype(np.int64)}
        meta["phi_on"] = "the forget set's training-pool ids (forget_ids, sorted)"
    np.savez_compressed(out / f"{name}.npz", **arrays)
    write_json_atomic(out / f"{name}.json", meta, overwrite=True)
    seconds = [m["seconds"] for m in members if m["seconds"]]
    print(f"{name}: {len(members)} members, {np.mean(seconds):.1f} s each to train → {out / name}.npz", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion-mini")
    parser.add_argument("--retrains", type=int, default=8, help="K: Retrains per forget set")
    parser.add_argument("--shadows", type=int, default=32, help="M: shadow models")
    parser.add_argument("--only", nargs="+", help="build only these names (shadow, class-3, random-0.1@0, ...)")
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "populations")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--executor", default="inline", choices=("inline", "process", "ray"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--cpus", type=int, default=None, help="torch threads per member (default: this machine's)")
    parser.add_argument("--sample-seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    from engine.checkpoints import sha256_of
    from engine.executor import make_executor
    from engine.population import build_population
    from engine.references import load_original, original_path
    from engine.data import load_dataset

    cpus = args.cpus or torch.get_num_threads()   # an inline job runs with its `cpus` torch threads
    data = load_dataset(args.dataset)
    out = args.out or REPO / "assets" / "populations" / data.name
    out.mkdir(parents=True, exist_ok=True)
    original, _ = load_original(data, device="cpu")
    original_sha = sha256_of(original_path(data.name))
    write_sample_sets(data, original, out, args.sample_seed)
    executor = make_executor(args.executor)
    command = "python -m scripts.build_populations " + " ".join(argv if argv is not None else sys.argv[1:])
    for name, forget in plan(data.name).items():
        if args.only and name not in args.only:
            continue
        kind, count = ("shadow", args.shadows) if forget is None else ("retrain", args.retrains)
        folder = args.work / data.name / name
        start = time.perf_counter()
        manifest = build_population(executor, dataset=args.dataset, kind=kind, count=count, out=folder,
                                    forget=forget, seed=0, device=args.device, cpus=cpus)
        if manifest["failures"]:
            print(f"{name}: {len(manifest['failures'])} members failed; rerun to resume", file=sys.stderr)
            return 1
        print(f"{name}: built in {time.perf_counter() - start:.0f} s", flush=True)
        compact(name, folder, data, forget, out, original_sha, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
