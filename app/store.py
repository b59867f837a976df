"""The run directory, through `engine.runs` (the same layout the CLI writes), listed again after a restart.

Under `runs_root()` ($UNLEARNING_LAB_RUNS, default ./runs):
    <dataset>/<UTC time>-<method>-seed<s>/run.json             the record: method, config, seed, forget spec,
                                                              status, metrics, Retrain metrics, seconds, ...
    <dataset>/<UTC time>-<method>-seed<s>/model.safetensors    the unlearned weights (+ model.json)
    <dataset>/<UTC time>-<method>-seed<s>/insights/            arrays from engine.compute_insights
    _references/<dataset>-<key>.safetensors                    Retrain models computed in the background for
                                                              forget sets without a shipped reference
A run's id is its path relative to the root. A run left "running" by a dead process lists as "interrupted".
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Optional

import engine

REPO = Path(__file__).resolve().parent.parent


def runs_root() -> Path:
    root = Path(os.environ.get("UNLEARNING_LAB_RUNS") or REPO / "runs")
    root.mkdir(parents=True, exist_ok=True)
    return root


def spec_key(spec: dict) -> str:
    """A stable short key for a forget spec (dict form)."""
    canonical = json.dumps({k: spec.get(k) for k in ("classes", "fraction", "sample_ids", "seed")}, sort_keys=True)
    return hashlib.sha1(canonical.encode()).hexdigest()[:12]


def new_run_dir(method: str, seed: int, dataset: str) -> Path:
    return engine.runs.new_run_dir(runs_root(), method, seed, dataset)


def run_id(run_dir: Path) -> str:
    """The path relative to the run root; a run kept elsewhere (the tour's prepared run) is its absolute path."""
    path = Path(run_dir).resolve()
    try:
        return path.relative_to(runs_root().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def write_record(run_dir: Path, record: dict) -> None:
    record = {k: v for k, v in record.items() if k != "path"}
    engine.runs.write_status(run_dir, record, record["status"])


def read_record(run_dir: Path) -> Optional[dict]:
    try:
        record = engine.runs.read_record(run_dir)
    except engine.CheckpointError:
        return None
    return _settled({**record, "path": str(run_dir), "id": run_id(run_dir)})


def list_runs() -> list[dict]:
    """Every run on disk (the app's and the CLI's), newest first; dead "running" ones read "interrupted"."""
    root = runs_root()
    return [_settled({**r, "id": run_id(Path(r["path"]))}) for r in engine.runs.list_runs(root)]


def _settled(record: dict) -> dict:
    """Insights left "computing" by an earlier process will never arrive: say so (the metrics stand)."""
    if record.get("insights") == "computing" and record.get("pid") != os.getpid():
        record["insights"] = "interrupted"
    return record


def load_run(run_id: str) -> Optional[dict]:
    path = runs_root() / run_id
    return read_record(path) if (path / engine.runs.RECORD_NAME).is_file() else None


def reference_dir() -> Path:
    path = runs_root() / "_references"
    path.mkdir(parents=True, exist_ok=True)
    return path


def computed_reference_path(dataset_name: str, spec: dict) -> Path:
    from app import settings

    suffix = "-fast" if settings.FAST else ""    # 1-epoch references of fast mode never pass for real ones
    return reference_dir() / f"{dataset_name}-{spec_key(spec)}{suffix}.safetensors"
