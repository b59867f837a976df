"""Identical runs computed once: a Start whose run already exists (finished, queued or running) gets that run.

A run's identity is `engine.RunRequest.identity` (original model's sha256, forget set, method, resolved config,
seed, device class, torch version, fast mode): equal identities compute equal records, timing and owner aside
(tests/test_identity.py). Where a finished run with the identity lives:

    prepared roots (read-only)   app/tour/run, app/tour/compare/<method>/ (the guided tour's runs, shipped) and
                                 $UNLEARNING_LAB_PREPARED (default ./prepared: scripts/build_classroom.py, run at
                                 image build time: each class with WSS-CL and SalUn at their defaults)
    the run root                 runs finished by any session of this server (store.list_runs)

A shared result never says who ran it: pages show its metrics, never its owner or job.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Optional

import engine
from app import store

TOUR = Path(__file__).resolve().parent / "tour"
_INDEX: dict[tuple, dict[str, Path]] = {}      # (roots, their mtimes) → identity → run directory
_LOCK = threading.Lock()


def prepared_root() -> Path:
    return Path(os.environ.get("UNLEARNING_LAB_PREPARED") or store.REPO / "prepared")


def prepared_dirs() -> list[Path]:
    """Every prepared run directory (finished records under the read-only roots)."""
    roots = [TOUR / "run", *sorted((TOUR / "compare").glob("*")), prepared_root()]
    found = []
    for root in roots:
        if root.is_dir():
            found += sorted(p.parent for p in root.rglob(engine.RECORD_NAME))
    return found


def _prepared_index() -> dict[str, Path]:
    """identity → prepared run directory, read once per change of the roots (they are read-only while serving)."""
    dirs = prepared_dirs()
    stamp = tuple((str(d), (d / engine.RECORD_NAME).stat().st_mtime_ns) for d in dirs)
    with _LOCK:
        if stamp not in _INDEX:
            index = {}
            for path in dirs:
                try:
                    record = engine.read_record(path).settle()
                except engine.CheckpointError:
                    continue
                identity = engine.record_identity(record)
                if record.status == "finished" and record.insights == "ready" and identity:
                    index.setdefault(identity, path)
            _INDEX.clear()
            _INDEX[stamp] = index
        return _INDEX[stamp]


def find(identity: str) -> Optional[Path]:
    """A prepared run with this identity, or None."""
    return _prepared_index().get(identity)


def prepared_run(run_id: str) -> Optional[dict]:
    """A prepared run's record as pages read it (its id is its absolute path), or None for any other id."""
    path = Path(run_id)
    roots = [TOUR.resolve(), prepared_root().resolve()]
    if not path.is_absolute() or not any(root in path.resolve().parents for root in roots) \
            or not (path / engine.RECORD_NAME).is_file():
        return None
    return store.read_record(path)


def find_finished(identity: str) -> Optional[str]:
    """The run id of a finished run with this identity: a prepared one first, else one in the run root."""
    path = find(identity)
    if path is not None:
        return store.run_id(path)
    for path, record in engine.list_records(store.runs_root()):
        if record.status == "finished" and engine.record_identity(record) == identity:
            return store.run_id(path)
    return None
