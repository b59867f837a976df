"""A user's own original model: an uploaded weights file, checked by the engine, kept beside the runs.

`accept(name, data, spec)` returns the path of a checkpoint (safetensors + sidecar) under
`<runs root>/_uploads/<sha256[:16]>.safetensors`, or raises `engine.CheckpointError` with a message meant for
the page. Refused: another extension, an empty or too large file, a truncated or corrupted file, a pickle
that would run code (`torch.load(weights_only=True)` in the engine), another architecture or shape, weights
that are not finite. The shipped original (assets/) is never touched: runs pick the upload by its path.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import engine
from app import store

EXTENSIONS = (".safetensors", ".pt", ".pth")
MAX_BYTES = 200 * 1024 * 1024   # the engine's limit too (MAX_UPLOAD_BYTES) and .streamlit/config.toml's maxUploadSize


def upload_dir() -> Path:
    path = store.runs_root() / "_uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def accept(name: str, data: bytes, spec, dataset_name: str = "") -> Path:
    """Check an uploaded weights file against ``spec`` (the shipped original's `ModelSpec`) and keep it."""
    suffix = Path(name).suffix.lower()
    if suffix not in EXTENSIONS:
        raise engine.CheckpointError(f"{name}: upload a {', '.join(EXTENSIONS)} file of weights (a state dict)")
    if not data:
        raise engine.CheckpointError(f"{name} is empty")
    if len(data) > MAX_BYTES:
        raise engine.CheckpointError(f"{name} is {len(data) / 1e6:.0f} MB; the limit is {MAX_BYTES / 1e6:.0f} MB")
    digest = hashlib.sha256(data).hexdigest()
    target = upload_dir() / f"{digest[:16]}.safetensors"
    if target.is_file() and target.with_suffix(".json").is_file():
        return target
    handle, temporary = tempfile.mkstemp(dir=upload_dir(), suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        model = engine.load_state_file(temporary, spec)        # refuses code, truncation, wrong architecture
    finally:
        os.unlink(temporary)
    bad = [n for n, t in model.state_dict().items() if t.is_floating_point() and not bool(t.isfinite().all())]
    if bad:
        raise engine.CheckpointError(f"{name}: {bad[0]} holds NaN or infinite values")
    engine.save_checkpoint(target, model, {"kind": "uploaded original", "source_name": name, "source_sha256": digest,
                                           "dataset": dataset_name}, overwrite=True)
    return target


def describe(path: str | Path) -> str:
    try:
        record = engine.read_sidecar(path)
    except engine.CheckpointError:
        return Path(path).name
    return f"{record.get('source_name', Path(path).name)} (sha256 {str(record.get('source_sha256', ''))[:12]}…)"
