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

    _uploads/<session>/<sha256[:16]>.safetensors               uploaded original models (app/uploads.py)
Size cap: $UNLEARNING_LAB_RUNS_MAX_MB (default 2048; anything but a positive finite number is refused with a
message) bounds the folder, uploads included; when a run is queued and again after its files are written, the
heaviest owner's oldest ended runs and unused uploads go first, the insight cache last (`enforce_size_cap`).
Never deleted: a live run or the upload it uses, the computed Retrain references, anything outside the run
root (assets/, the tour's prepared run).
"""
from __future__ import annotations

import datetime
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

import engine

REPO = Path(__file__).resolve().parent.parent
PROCESS_TOKEN = engine.PROCESS_TOKEN  # the engine decides liveness; kept here for readers of the app's records
DEFAULT_MAX_MB = 2048
PROTECTED = ("_references",)          # never pruned (exact-unlearning references are costly to recompute)
_LOG = logging.getLogger("unlearning_lab")


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
class StorageError(ValueError):
    """The run folder cannot be used (uncreatable, read-only) or its size cap is not a usable number. The
    message is for the page: it names the setting, not the server's paths."""


def max_bytes() -> int:
    """$UNLEARNING_LAB_RUNS_MAX_MB in bytes (unset or empty: DEFAULT_MAX_MB). Anything but a positive finite
    number of megabytes (inf, nan, 0, -1, 'abc') raises StorageError: a cap that is garbage is refused, not
    silently replaced by the default (which would hide the mistake) nor obeyed (0 would delete every run)."""
    text = (os.environ.get("UNLEARNING_LAB_RUNS_MAX_MB") or "").strip()
    if not text:
        return DEFAULT_MAX_MB * 1024 * 1024
    try:
        megabytes = float(text)
    except ValueError:
        megabytes = math.nan
    if not math.isfinite(megabytes) or megabytes <= 0:
        raise StorageError(f"UNLEARNING_LAB_RUNS_MAX_MB={text!r} is not a size: it must be a positive, finite number "
                           f"of megabytes (unset, it is {DEFAULT_MAX_MB}). Runs cannot start until it is fixed.")
    return max(1, int(megabytes * 1024 * 1024))


def problem() -> Optional[str]:
    """Why runs cannot be kept here, in one sentence for the pages (None when all is well); the details,
    with the folder's path, go to the server's log."""
    try:
        max_bytes()
        root = runs_root()
        with tempfile.NamedTemporaryFile(dir=root, prefix=".probe-"):
            pass
    except StorageError as error:
        _LOG.error("%s", error)
        return str(error)
    except OSError as error:
        _LOG.error("run folder %s is not usable: %s", os.environ.get("UNLEARNING_LAB_RUNS") or REPO / "runs", error)
        reason = error.strerror or type(error).__name__
        return (f"The run folder cannot be used ({reason.lower()}): runs cannot be started, saved or listed. The "
                "server's administrator must point UNLEARNING_LAB_RUNS at a folder the app can create and write.")
    return None


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def enforce_size_cap(limit: Optional[int] = None, keep: Optional[Path] = None) -> list[Path]:
    """Delete until the run root fits in ``limit`` bytes (default `max_bytes()`); returns what was deleted.

    Fair per owner: while over, the owner (session; the CLI's runs have none) using the most space loses their
    oldest deletable item first — an ended run, or an uploaded model no live run uses (least recently used
    first) — so one heavy user never wipes another's finished runs. The shared insight cache goes only when no
    owner has anything deletable left. Never touched: a live (queued / running / computing) run, an upload a
    live run starts from, ``keep`` (the run just written), the references, anything outside the run root."""
    root = runs_root().resolve()
    limit = max_bytes() if limit is None else limit
    total = _size(root)
    if total <= limit:
        return []
    protected = {(REPO / "assets").resolve(), (REPO / "app").resolve(), *([Path(keep).resolve()] if keep else [])}
    usage: dict[str, int] = {}
    deletable: dict[str, list[tuple[float, Path, int]]] = {}
    in_use = set()
    for record in list_runs():              # settled: a dead process's "running" / "queued" is "interrupted"
        path = Path(record["path"]).resolve()
        owner, size = record.get("owner") or "", _size(path)
        live = record.get("status") in ("queued", "running") or record.get("insights") == "computing"
        if record.get("original"):
            if live:
                in_use.add(Path(record["original"]).resolve())
        if root not in path.parents or any(part in PROTECTED for part in path.relative_to(root).parts):
            continue
        usage[owner] = usage.get(owner, 0) + size
        if not live and not any(path == k or k in path.parents or path in k.parents for k in protected):
            deletable.setdefault(owner, []).append((_created(record, path), path, size))
    for owner_dir in sorted((root / "_uploads").glob("*/")) if (root / "_uploads").is_dir() else []:
        for model in owner_dir.glob("*.safetensors"):
            files = [f for f in (model, model.with_suffix(".json")) if f.is_file()]
            size = sum(f.stat().st_size for f in files)
            usage[owner_dir.name] = usage.get(owner_dir.name, 0) + size
            if model.resolve() not in in_use:
                deletable.setdefault(owner_dir.name, []).append((model.stat().st_mtime, model, size))
    for items in deletable.values():
        items.sort(key=lambda item: item[0], reverse=True)      # pop() takes the oldest
    deleted = []
    while total > limit and any(deletable.values()):
        owner = max((o for o in deletable if deletable[o]), key=lambda o: usage.get(o, 0))
        _, path, size = deletable[owner].pop()
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)  # an upload's sidecar goes with it
        total, usage[owner] = total - size, usage.get(owner, 0) - size
        deleted.append(path)
    cache = root / "_insight_cache"
    for path in sorted(cache.glob("*.npz"), key=lambda f: f.stat().st_mtime) if cache.is_dir() else []:
        if total <= limit:
            break
        total -= path.stat().st_size
        path.unlink(missing_ok=True)
        deleted.append(path)
    if total > limit:
        _LOG.warning("run folder holds %d bytes, over its cap of %d: the rest is live or protected", total, limit)
    return deleted


def _created(record: dict, path: Path) -> float:
    """A run's age for pruning: its record's creation time (ISO text, sorted as such), else the folder's."""
    try:
        return datetime.datetime.fromisoformat(str(record.get("created")).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return path.stat().st_mtime


def load_run(run_id: str) -> Optional[dict]:
    path = runs_root() / run_id
    return read_record(path) if (path / engine.RECORD_NAME).is_file() else None


def reference_dir() -> Path:
    path = runs_root() / "_references"
    path.mkdir(parents=True, exist_ok=True)
    return path
