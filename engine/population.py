"""Populations of independently trained models: N Retrains of one forget set (different seeds), or N shadow
models each trained on a random half of the training pool — what a per-example privacy audit consumes.

    python -m engine population --kind shadow --dataset fashion-mini --count 16 --out runs/shadow --executor ray

Member ``i`` is trained with seed ``seed + i``; a shadow member's half is drawn from that seed too, so a
member is reproducible on its own. ``OUT/member-003.safetensors`` + ``.json`` is the checkpoint and its
record; ``OUT/member-003.in.npy`` holds the sorted training-pool ids it was trained on (its "in" set);
``OUT/population.json`` lists the members. Members already in OUT are kept and skipped (a rerun resumes);
a member of a different population (kind, forget set, recipe) in OUT is refused, never overwritten.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Optional

import numpy as np

from engine.executor import Job, comparable, dataset_ref, open_dataset
from engine.progress import ProgressCallback

KINDS = ("retrain", "shadow")


def member_indices(dataset, kind: str, seed: int, forget: Optional[dict], split_seed: int = 0) -> np.ndarray:
    """The training-pool ids member ``seed`` trains on: D_r for a Retrain, a seeded random half for a shadow."""
    from engine.splits import ForgetSpec, make_split, training_indices

    if kind == "retrain":
        if not forget:
            raise ValueError("a retrain population needs a forget set (--forget-classes, --forget-fraction, ...)")
        return make_split(dataset, ForgetSpec.from_dict(forget), split_seed).retain
    if kind == "shadow":
        pool = training_indices(dataset, split_seed)
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(pool, len(pool) // 2, replace=False)).astype(np.int64)
    raise ValueError(f"unknown population kind {kind!r}; choose one of {', '.join(KINDS)}")


def train_member(dataset: dict, kind: str, seed: int, forget: Optional[dict], architecture: str,
                 epochs: Optional[int], split_seed: int, device: str, on_progress=None, should_stop=None) -> dict:
    """One member, trained and evaluated: its weights (numpy), record and "in" ids (a job function)."""
    import time

    from engine.evaluation import evaluate
    from engine.metrics import accuracy
    from engine.references import train_from_scratch
    from engine.splits import ForgetSpec, make_split
    from engine.training import RECIPES, device_name, predict, resolve_device

    data, resolved = open_dataset(dataset), resolve_device(device)
    indices = member_indices(data, kind, seed, forget, split_seed)
    recipe = RECIPES[architecture] if epochs is None else dataclasses.replace(RECIPES[architecture], epochs=epochs)
    start = time.perf_counter()
    model = train_from_scratch(data, indices, architecture=architecture, recipe=recipe, device=resolved, seed=seed,
                               stage=f"{kind} member", on_progress=on_progress, should_stop=should_stop)
    seconds = time.perf_counter() - start
    test = predict(model, data.test_images, device=resolved)
    metrics = {"test_acc": accuracy(test.predictions, data.test_labels.numpy())}
    if kind == "retrain":
        metrics.update(evaluate(model, data, make_split(data, ForgetSpec.from_dict(forget), split_seed),
                                device=resolved).to_dict())
    record = {"kind": f"population-{kind}", "dataset": data.name, "split_seed": split_seed, "forget": forget,
              "recipe": recipe.to_dict(), "seed": seed, "train_size": int(len(indices)),
              "in_ids_sha256": hashlib.sha256(indices.tobytes()).hexdigest(), "metrics": metrics,
              "seconds": seconds, "device": device_name(resolved)}
    state = {name: tensor.detach().cpu().numpy() for name, tensor in model.state_dict().items()}
    return {"state": state, "record": record, "indices": indices}


def member_path(out: Path, index: int) -> Path:
    return Path(out) / f"member-{index:03d}.safetensors"


def _identity(record: dict) -> str:
    """What must agree between a member already in OUT and the population asked for."""
    return json.dumps({k: record.get(k) for k in ("kind", "dataset", "split_seed", "forget", "recipe")},
                      sort_keys=True)


def build_population(executor, *, dataset: str, kind: str, count: int, out: Path, forget: Optional[dict] = None,
                     seed: int = 0, architecture: str = "small-cnn", epochs: Optional[int] = None,
                     split_seed: int = 0, data_root: Optional[str] = None, device: str = "auto", cpus: int = 1,
                     gpus: float = 0.0, on_progress: Optional[ProgressCallback] = None,
                     on_failure=None, should_stop=None) -> dict:
    """Train the members of a population missing from ``out`` on ``executor``; write each as it arrives.

    Returns:
        The manifest written to ``out/population.json`` (members, failures).
    """
    from engine.checkpoints import read_sidecar, save_checkpoint, write_json_atomic
    from engine.models import build_model, spec_for
    from engine.training import RECIPES

    if kind not in KINDS:
        raise ValueError(f"unknown population kind {kind!r}; choose one of {', '.join(KINDS)}")
    if count < 1:
        raise ValueError(f"--count must be ≥ 1, got {count}")
    if architecture not in RECIPES:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {', '.join(RECIPES)}")
    if kind == "retrain" and not forget:
        raise ValueError("a retrain population needs a forget set (--forget-classes, --forget-fraction, ...)")
    ref = dataset_ref(dataset, data_root)
    data = open_dataset(ref)
    recipe = RECIPES[architecture] if epochs is None else dataclasses.replace(RECIPES[architecture], epochs=epochs)
    wanted = _identity({"kind": f"population-{kind}", "dataset": data.name, "split_seed": split_seed,
                        "forget": forget, "recipe": recipe.to_dict()})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for index in range(count):
        path = member_path(out, index)
        if path.is_file():
            if _identity(read_sidecar(path)) != wanted:
                raise FileExistsError(f"{path} belongs to a different population; choose another --out")
            continue
        jobs.append(Job("engine.population:train_member", {
            "dataset": ref, "kind": kind, "seed": seed + index, "forget": forget, "architecture": architecture,
            "epochs": epochs, "split_seed": split_seed, "device": device}, key=str(index), cpus=cpus, gpus=gpus))
    failures = []
    for result in executor.run(jobs, on_progress=on_progress, should_stop=should_stop):
        index = int(result.job.key)
        if not result.ok:
            failures.append({"member": index, "seed": result.job.args["seed"], "error": result.error})
            if on_failure is not None:
                on_failure(result)
            continue
        import torch

        model = build_model(spec_for(data, architecture))
        model.load_state_dict({k: torch.from_numpy(v) for k, v in result.value["state"].items()})
        np.save(member_path(out, index).with_suffix(".in.npy"), result.value["indices"])
        save_checkpoint(member_path(out, index), model, {**result.value["record"], "member": index,
                                                         "in_ids": member_path(out, index).with_suffix(".in.npy").name})
    members = []
    for index in range(count):
        path = member_path(out, index)
        if path.is_file():
            record = read_sidecar(path)
            members.append({"member": index, "checkpoint": path.name, "in_ids": record["in_ids"],
                            "seed": record["seed"], "metrics": record["metrics"]})
    manifest = {"kind": kind, "dataset": data.name, "forget": forget, "split_seed": split_seed,
                "architecture": architecture, "recipe": recipe.to_dict(), "count": count, "members": members,
                "failures": failures}
    write_json_atomic(out / "population.json", manifest, overwrite=True)
    return manifest


def same_members(out_a: Path, out_b: Path) -> bool:
    """Whether two population folders hold the same members (records without timing fields, weights' hash)."""
    from engine.checkpoints import read_sidecar

    paths_a, paths_b = sorted(Path(out_a).glob("member-*.safetensors")), sorted(Path(out_b).glob("member-*.safetensors"))
    return len(paths_a) == len(paths_b) > 0 and all(
        comparable(read_sidecar(a)) == comparable(read_sidecar(b)) for a, b in zip(paths_a, paths_b))
