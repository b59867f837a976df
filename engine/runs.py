"""Run records on disk: one directory per run holding ``model.safetensors`` + ``model.json`` (the
checkpoint, via engine.checkpoints) and ``run.json`` (the record, with its `status`).

    runs/<dataset>/<UTC time>-<method>-seed<s>[-n]/{model.safetensors, model.json, run.json}

A run directory is never reused: `new_run_dir` adds a suffix when the name is taken.
"""
from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Optional

from engine.checkpoints import CheckpointError, load_checkpoint, save_checkpoint, write_json_atomic

STATUSES = ("running", "finished", "cancelled", "failed", "interrupted")
RECORD_NAME = "run.json"
MODEL_NAME = "model.safetensors"


def new_run_dir(root: str | Path, method: str, seed: int = 0, dataset: str | None = None) -> Path:
    """Create and return a fresh directory for a run (never an existing one)."""
    base = Path(root) / dataset if dataset else Path(root)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}-{method}-seed{seed}"
    for attempt in range(1000):
        candidate = base / (name if attempt == 0 else f"{name}-{attempt}")
        try:
            candidate.mkdir(parents=True, exist_ok=False)
            return candidate
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a fresh run directory under {base}")


def write_status(run_dir: str | Path, record: dict, status: str) -> Path:
    """Write (or update) the run's record with ``status`` — e.g. "running" before, "cancelled" after."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    return write_json_atomic(Path(run_dir) / RECORD_NAME, {**record, "status": status}, overwrite=True)


def save_run(run_dir: str | Path, outcome, *, extra: Optional[dict] = None) -> Path:
    """Save a finished `RunOutcome`: checkpoint + sidecar and run.json into ``run_dir``.

    ``run_dir`` must not hold a run yet (make one with `new_run_dir`); nothing is overwritten.
    Returns the run directory.
    """
    run_dir = Path(run_dir)
    if (run_dir / MODEL_NAME).exists():
        raise FileExistsError(f"{run_dir} already holds a run; refusing to overwrite it")
    existing = read_record(run_dir) if (run_dir / RECORD_NAME).exists() else {}
    if existing.get("status") not in (None, "running"):
        raise FileExistsError(f"{run_dir} already holds a {existing['status']} run; refusing to overwrite it")
    record = {**outcome.record, **(extra or {}), "status": "finished", "checkpoint": MODEL_NAME}
    save_checkpoint(run_dir / MODEL_NAME, outcome.result.model, record)
    write_status(run_dir, record, "finished")
    return run_dir


def read_record(run_dir: str | Path) -> dict:
    path = Path(run_dir) / RECORD_NAME
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is not a readable run record ({error})") from None


def list_runs(root: str | Path) -> list[dict]:
    """Every run record under ``root`` (newest first), each with its directory under "path".

    A record still marked "running" whose process is gone is reported as "interrupted".
    """
    root = Path(root)
    if not root.is_dir():
        return []
    records = []
    for path in root.rglob(RECORD_NAME):
        try:
            record = read_record(path.parent)
        except CheckpointError:
            continue
        if record.get("status") == "running" and not _alive(record.get("pid")):
            record["status"] = "interrupted"
        records.append({**record, "path": str(path.parent)})
    return sorted(records, key=lambda r: (r.get("created", ""), r["path"]), reverse=True)


def load_run(path: str | Path, *, device="cpu"):
    """(model, record) of a finished run directory; CheckpointError if it has no model."""
    run_dir = Path(path)
    if run_dir.is_file():
        run_dir = run_dir.parent
    record = read_record(run_dir)
    model_path = run_dir / MODEL_NAME
    if not model_path.is_file():
        raise CheckpointError(f"{run_dir} has no model (status {record.get('status')!r})")
    model, _ = load_checkpoint(model_path, device=device)
    return model, record


def _alive(pid) -> bool:
    if not pid:
        return False
    import os

    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    return True
