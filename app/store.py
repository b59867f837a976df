"""The app's run folder: the engine's run directories (the same layout the CLI writes), listed again after a restart.

Under `runs_root()` ($UNLEARNING_LAB_RUNS, default ./runs):
    <dataset>/<UTC time>-<method>-seed<s>/run.json             the record: method, config, seed, forget spec,
                                                              status, metrics, Retrain metrics, seconds, ...
    <dataset>/<UTC time>-<method>-seed<s>/model.safetensors    the unlearned weights (+ model.json)
    <dataset>/<UTC time>-<method>-seed<s>/insights/            arrays from engine.compute_insights
    _references/<dataset>-<ForgetSpec.key()>.safetensors       Retrain models computed in the background for
                                                              forget sets without a shipped reference
A run's id is its path relative to the root. Records are `engine.RunRecord`s; listings are settled by the engine
(a run left "running" by a dead process lists as "interrupted", also after a restart that reuses the old pid).

Size cap: $UNLEARNING_LAB_RUNS_MAX_MB (default 2048) bounds the folder; before a new run starts, the oldest
ended runs (finished / cancelled / failed / interrupted), then the oldest insight-cache files, are deleted until
it fits. Never deleted: a live run, the computed Retrain references, anything outside the run root (assets/,
the tour's prepared run).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

import engine

REPO = Path(__file__).resolve().parent.parent
PROCESS_TOKEN = engine.PROCESS_TOKEN  # the engine decides liveness; kept here for readers of the app's records
DEFAULT_MAX_MB = 2048
PROTECTED = ("_references",)          # never pruned (exact-unlearning references are costly to recompute)


def runs_root() -> Path:
    root = Path(os.environ.get("UNLEARNING_LAB_RUNS") or REPO / "runs")
    root.mkdir(parents=True, exist_ok=True)
    return root


def new_run_dir(method: str, seed: int, dataset: str) -> Path:
    enforce_size_cap()
    return engine.new_run_dir(runs_root(), method, seed, dataset)


def run_id(run_dir: Path) -> str:
    """The path relative to the run root; a run kept elsewhere (the tour's prepared run) is its absolute path."""
    path = Path(run_dir).resolve()
    try:
        return path.relative_to(runs_root().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def write_record(run_dir: Path, record: dict | engine.RunRecord) -> None:
    """Store a record (a page's JSON view is accepted: its "path" / "id" are not stored)."""
    typed = record if isinstance(record, engine.RunRecord) else engine.RunRecord.from_json(record)
    engine.write_record(run_dir, typed)


def read_record(run_dir: Path) -> Optional[dict]:
    """The run's record as pages read it: its JSON form, settled, with "path" and "id"."""
    try:
        record = engine.read_record(run_dir)
    except engine.CheckpointError:
        return None
    return record.settle().view(run_dir, run_id(run_dir))


def list_runs() -> list[dict]:
    """Every run on disk (the app's and the CLI's), newest first; dead "running" ones read "interrupted"."""
    return [record.view(path, run_id(path)) for path, record in engine.list_records(runs_root())]


# ---------------------------------------------------------------------------------------------- size cap
def max_bytes() -> int:
    try:
        return int(float(os.environ.get("UNLEARNING_LAB_RUNS_MAX_MB") or DEFAULT_MAX_MB) * 1024 * 1024)
    except ValueError:
        return DEFAULT_MAX_MB * 1024 * 1024


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def enforce_size_cap(limit: Optional[int] = None) -> list[Path]:
    """Delete the oldest ended runs, then the oldest insight-cache files, until the run root fits in ``limit``
    bytes (default `max_bytes()`). Returns what was deleted. Live runs and references are never touched."""
    root = runs_root().resolve()
    limit = max_bytes() if limit is None else limit
    total = _size(root)
    if total <= limit:
        return []
    keep = {(REPO / "assets").resolve(), (REPO / "app").resolve()}
    candidates = []
    for record in list_runs():              # newest first, dead "running" ones already "interrupted"
        path = Path(record["path"]).resolve()
        if record.get("status") not in ("finished", "cancelled", "failed", "interrupted") \
                or record.get("insights") == "computing":   # listed settled: "computing" means alive
            continue
        if root not in path.parents or any(path == k or k in path.parents or path in k.parents for k in keep) \
                or any(part in PROTECTED for part in path.relative_to(root).parts):
            continue
        candidates.append(path)
    cache = root / "_insight_cache"
    cached = sorted(cache.glob("*.npz"), key=lambda f: f.stat().st_mtime) if cache.is_dir() else []
    deleted = []
    for path in [*reversed(candidates), *cached]:          # oldest run first; the cache after every run
        if total <= limit:
            break
        size = _size(path)
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        total -= size
        deleted.append(path)
    return deleted


def load_run(run_id: str) -> Optional[dict]:
    path = runs_root() / run_id
    return read_record(path) if (path / engine.RECORD_NAME).is_file() else None


def reference_dir() -> Path:
    path = runs_root() / "_references"
    path.mkdir(parents=True, exist_ok=True)
    return path
