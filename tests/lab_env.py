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
def fast_lab(runs: Path):
    """UNLEARNING_LAB_FAST=1, runs under ``runs``, no warm-up; app.settings re-read; all restored afterwards."""
    saved = {key: os.environ.get(key) for key in KEYS}
    os.environ.update(UNLEARNING_LAB_FAST="1", UNLEARNING_LAB_RUNS=str(runs), UNLEARNING_LAB_NO_WARMUP="1")
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
