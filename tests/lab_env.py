"""Shared by the app-level test modules: fast engine settings and a private run folder for one module."""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ORIGINAL = REPO / "assets/checkpoints/fashion-mini/original.safetensors"   # the shipped original: never written


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

KEYS = ("UNLEARNING_LAB_FAST", "UNLEARNING_LAB_RUNS", "UNLEARNING_LAB_NO_WARMUP")


@contextlib.contextmanager
def fast_lab(runs: Path, fast: bool = True):
    """UNLEARNING_LAB_FAST=1 (unset with ``fast=False``: the real defaults), runs under ``runs``, no warm-up;
    app.settings re-read; all restored afterwards."""
    saved = {key: os.environ.get(key) for key in KEYS}
    os.environ.update(UNLEARNING_LAB_RUNS=str(runs), UNLEARNING_LAB_NO_WARMUP="1")
    if fast:
        os.environ["UNLEARNING_LAB_FAST"] = "1"
    else:
        os.environ.pop("UNLEARNING_LAB_FAST", None)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".numba_cache"))
    from app import settings

    importlib.reload(settings)
    try:
        yield settings
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        importlib.reload(settings)


def start_run_to_cancel(manager, owner: str = "me"):
    """Queue a 3-epoch Retrain of class 2 through the app's pipeline and wait (≤ 300 s) until it is running past its
    first step: (job, its snapshot then). The app-level Cancel tests' common start."""
    import time

    import engine
    from app import pipeline
    from app.jobs import TERMINAL

    request = pipeline.run_request("retrain", {"epochs": 3}, engine.ForgetSpec(classes=(2,)))
    job = manager.submit(owner, "unlearn", "cancel me", request, pipeline.unlearn_work)
    deadline = time.time() + 300
    while time.time() < deadline:
        snap = manager.snapshot(job.id)
        if snap["status"] in TERMINAL or snap["status"] == "running" and snap["stage"].startswith("retrain") \
                and snap["step"] >= 1:                  # (queued first: it waits for the worker to take it)
            break
        time.sleep(0.1)
    return job, snap
