"""Run directories on disk: one per run holding ``model.safetensors`` + ``model.json`` (the checkpoint, via
engine.checkpoints) and ``run.json`` (the `RunRecord`, via engine.records).

    runs/<dataset>/<UTC time>-<method>-seed<s>[-n]/{model.safetensors, model.json, run.json}

A run directory is never reused: `new_run_dir` adds a suffix when the name is taken. Readers here return the
record's JSON form with its "path" (what listings and the CLI print); `engine.records` has the typed value.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Optional

from engine.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from engine.metrics import GAP_KEYS, avg_gap
from engine.records import RECORD_NAME, STATUSES, RunRecord, read_record as read_typed, write_record

MODEL_NAME = "model.safetensors"
__all__ = ["RECORD_NAME", "STATUSES", "MODEL_NAME", "new_run_dir", "write_status", "save_run", "read_record",
           "list_runs", "list_records", "load_run", "fill_in_gaps"]


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


def write_status(run_dir: str | Path, record: dict | RunRecord, status: str) -> Path:
    """Write (or update) the run's record with ``status`` — e.g. "running" before, "cancelled" after."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    typed = record if isinstance(record, RunRecord) else RunRecord.from_json(record)
    typed.status = status
    return write_record(run_dir, typed)


def save_run(run_dir: str | Path, outcome, *, record: Optional[RunRecord] = None) -> Path:
    """Save a finished `RunOutcome`: checkpoint + sidecar and run.json into ``run_dir``.

    ``record`` is the run's record so far (the app's, with its owner and job); None starts from the outcome's.
    ``run_dir`` must not hold a run yet (make one with `new_run_dir`); nothing is overwritten.
    Returns the run directory.
    """
    run_dir = Path(run_dir)
    if (run_dir / MODEL_NAME).exists():
        raise FileExistsError(f"{run_dir} already holds a run; refusing to overwrite it")
    existing = read_typed(run_dir).status if (run_dir / RECORD_NAME).exists() else None
    if existing not in (None, "running"):
        raise FileExistsError(f"{run_dir} already holds a {existing} run; refusing to overwrite it")
    figures = outcome.run
    typed = record if record is not None else RunRecord()
    typed.finish(**{k: getattr(figures, k) for k in _OUTCOME_FIELDS}, checkpoint=MODEL_NAME)
    sidecar = {k: v for k, v in typed.to_json().items() if k not in ("pid", "process")}
    save_checkpoint(run_dir / MODEL_NAME, outcome.result.model, sidecar)
    write_record(run_dir, typed)
    return run_dir


_OUTCOME_FIELDS = ("kind", "method", "label", "config", "seed", "dataset", "split_seed", "forget", "split",
                   "metrics", "reference", "avg_gap", "seconds", "device", "created", "versions")


def read_record(run_dir: str | Path) -> dict:
    """The record's JSON form (as stored)."""
    return read_typed(run_dir).to_json()


def list_records(root: str | Path) -> list[tuple[Path, RunRecord]]:
    """(directory, settled record) of every run under ``root``, newest first; unreadable ones skipped."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for path in root.rglob(RECORD_NAME):
        try:
            found.append((path.parent, read_typed(path.parent).settle()))
        except CheckpointError:
            continue
    return sorted(found, key=lambda item: (item[1].created, str(item[0])), reverse=True)


def list_runs(root: str | Path) -> list[dict]:
    """Every run record under ``root`` (newest first), each with its directory under "path".

    A record still marked "running" whose process is gone is reported as "interrupted".
    """
    return [record.view(path) for path, record in list_records(root)]


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


def fill_in_gaps(root: str | Path, dataset_name: str, forget, reference: dict, source: str = "computed") -> list[Path]:
    """Finished runs on this forget set that had no Retrain reference get their Avg. Gap now (``reference``:
    Retrain's metrics). Returns the run directories updated."""
    scores = {k: float(reference[k]) for k in GAP_KEYS}
    updated = []
    for run_dir, record in list_records(root):
        if record.dataset == dataset_name and record.forget == forget and record.status == "finished" \
                and not record.reference_metrics and record.metrics:
            fresh = read_typed(run_dir)          # re-read: insights may have been written meanwhile
            fresh.reference_metrics, fresh.reference_source, fresh.reference = reference, source, scores
            fresh.avg_gap = avg_gap({k: fresh.metrics[k] for k in GAP_KEYS}, scores)
            write_record(run_dir, fresh)
            updated.append(run_dir)
    return updated
