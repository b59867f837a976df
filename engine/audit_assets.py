"""The shipped audit populations: per-example scores (not weights) of Retrain populations and shadow models.

``assets/populations/<dataset>/NAME.npz`` + ``NAME.json``, written by ``python -m scripts.build_populations``:

- a **shadow** population: ``phi`` (M × P float32, φ of every member on every training-pool image) and
  ``trained_on`` (M × P bits, packed along P): member i trained on a seeded random half of the pool;
- a **Retrain** population of one forget set: ``phi`` (K × n float32) on the sorted ``forget_ids`` and, in
  the JSON, each member's seed and UA / RA / TA / MIA.

`shadows` and `retrains` return them as `engine.audit_run.PopulationScores` (the shape a population folder
gives), only when dataset, split seed and recipe match what is asked — a population of another recipe would
calibrate the attack against the wrong models — and, for Retrains, only for the very same forget set.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from engine.splits import ForgetSpec

ROOT = Path(__file__).resolve().parent.parent / "assets" / "populations"


@functools.lru_cache(maxsize=64)
def _read(path: str) -> tuple[dict, dict]:
    base = Path(path)      # names hold dots ("random-0.1@0"): never with_suffix
    meta = json.loads(base.with_name(base.name + ".json").read_text())
    with np.load(base.with_name(base.name + ".npz"), allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    for array in arrays.values():
        array.setflags(write=False)
    return meta, arrays


def catalogue(dataset_name: str, root: Optional[Path] = None) -> dict[str, dict]:
    """name → metadata of every shipped population of ``dataset_name`` (no arrays read)."""
    folder = Path(root or ROOT) / dataset_name
    found = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        name = path.name[: -len(".json")]
        if (folder / f"{name}.npz").is_file():
            meta = json.loads(path.read_text())
            if meta.get("kind") in ("retrain", "shadow"):
                found[name] = meta
    return found


def _matches(meta: Mapping, split_seed: int, recipe: Optional[Mapping]) -> bool:
    return int(meta.get("split_seed", 0)) == int(split_seed) and (recipe is None or meta.get("recipe") == dict(recipe))


def _scores(meta: dict, arrays: dict, pool: int):
    from engine.audit_run import PopulationScores

    count = len(meta["members"])
    if meta["kind"] == "shadow":
        if meta.get("pool_size") != pool:
            raise ValueError(f"shipped shadows {meta['name']!r} cover {meta.get('pool_size')} images, not {pool}")
        phi = arrays["phi"].astype(np.float64)
        trained_on = np.unpackbits(arrays["trained_on"], axis=1, count=pool).astype(bool)
    else:
        ids = arrays["forget_ids"]
        phi = np.full((count, pool), np.nan)
        phi[:, ids] = arrays["phi"]
        trained_on = np.ones((count, pool), dtype=bool)
        trained_on[:, ids] = False
    manifest = {**meta, "members": [{"member": m["member"], "seed": m["seed"], "metrics": m["metrics"]}
                                    for m in meta["members"]], "shipped": meta["name"]}
    return PopulationScores(phi, trained_on, manifest, [m["metrics"] for m in meta["members"]], False)


def shadows(dataset, *, split_seed: int = 0, recipe: Optional[Mapping] = None, root: Optional[Path] = None):
    """The shipped shadow population for ``dataset`` (a `PopulationScores`), or None."""
    for name, meta in catalogue(dataset.name, root).items():
        if meta["kind"] == "shadow" and _matches(meta, split_seed, recipe):
            return _scores(*_read(str(Path(root or ROOT) / dataset.name / name)), len(dataset.train_labels))
    return None


def retrains(dataset, spec: ForgetSpec, *, split_seed: int = 0, recipe: Optional[Mapping] = None, root: Optional[Path] = None):
    """The shipped Retrain population of exactly this forget set (a `PopulationScores`), or None."""
    name = retrain_name(dataset.name, spec, split_seed=split_seed, recipe=recipe, root=root)
    return None if name is None else _scores(*_read(str(Path(root or ROOT) / dataset.name / name)),
                                             len(dataset.train_labels))


def retrain_name(dataset_name: str, spec: ForgetSpec, *, split_seed: int = 0, recipe: Optional[Mapping] = None,
                 root: Optional[Path] = None) -> Optional[str]:
    for name, meta in catalogue(dataset_name, root).items():
        if meta["kind"] == "retrain" and _matches(meta, split_seed, recipe) \
                and ForgetSpec.from_dict(meta["forget"]) == spec:
            return name
    return None


def original_recipe(dataset_name: str) -> Optional[dict]:
    """The shipped original's recipe (what the shipped populations must have been trained with)."""
    from engine.checkpoints import read_sidecar
    from engine.references import original_path

    path = original_path(dataset_name)
    return read_sidecar(path).get("recipe") if path.is_file() else None
