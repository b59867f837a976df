"""A user's own original model: an uploaded weights file, checked by the engine, kept beside the runs.

`accept(name, data, spec, dataset_name, owner)` returns the path of a checkpoint (safetensors + sidecar) under
`<runs root>/_uploads/<owner>/<sha256[:16]>.safetensors`, or raises `engine.CheckpointError` with a message that
names the user's file. Refused: another extension, an empty or too large file, a truncated or corrupted file, a
pickle that would run code (`torch.load(weights_only=True)` in the engine), another architecture or shape,
tensors that are not floating point where the model's are (integer, boolean, complex), values that are not
finite or overflow float32, a negative BatchNorm variance, and a model whose outputs on a few test images are not
finite. A model at chance accuracy on those images is kept, with a warning (`warning`).

Uploads are kept per session (``owner``): a later uploader of the same bytes gets their own copy with their own
file name, never the first uploader's. File names are the user's text: the page shows them with `st.text`, never
through markdown (where a name could become a remote image or a link). The shipped original (assets/) is never
touched: runs pick the upload by its path.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path

import engine
from app import store

EXTENSIONS = (".safetensors", ".pt", ".pth")
MAX_BYTES = 200 * 1024 * 1024   # the engine's limit too (MAX_UPLOAD_BYTES) and .streamlit/config.toml's maxUploadSize (MiB)
MAX_NAME = 120                  # characters of the file name kept for display


def upload_dir(owner: str | None = None) -> Path:
    """The uploads folder, or one session's folder in it."""
    path = store.runs_root() / "_uploads"
    if owner is not None:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", owner):
            raise ValueError(f"not a session id: {owner!r}")
        path = path / owner
    path.mkdir(parents=True, exist_ok=True)
    return path


def display_name(name: str) -> str:
    """The file name as text to show: control and formatting characters (newlines, bidi overrides) removed,
    at most MAX_NAME characters. Still the user's text: show it with `st.text`, not markdown."""
    cleaned = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip() or "(unnamed file)"
    return cleaned if len(cleaned) <= MAX_NAME else cleaned[: MAX_NAME - 1] + "…"


def accept(name: str, data: bytes, spec, dataset_name: str, owner: str) -> Path:
    """Check an uploaded weights file against ``spec`` (the shipped original's `ModelSpec`) and the dataset's
    test images, and keep it in ``owner``'s folder."""
    shown = display_name(name)
    suffix = Path(name).suffix.lower()
    if suffix not in EXTENSIONS:
        raise engine.CheckpointError(f"{shown}: upload a {', '.join(EXTENSIONS)} file of weights (a state dict)")
    if not data:
        raise engine.CheckpointError(f"{shown} is empty")
    if len(data) > MAX_BYTES:
        raise engine.CheckpointError(f"{shown} is {engine.size_text(len(data))}; the limit is "
                                     f"{engine.size_text(MAX_BYTES)}")
    digest = hashlib.sha256(data).hexdigest()
    target = upload_dir(owner) / f"{digest[:16]}.safetensors"
    if target.is_file() and target.with_suffix(".json").is_file():
        target.touch()                        # used again: the size cap prunes least recently used uploads first
        return target                         # this session already checked these bytes
    handle, temporary = tempfile.mkstemp(dir=upload_dir(), suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        # refuses code, truncation, another architecture, non-float tensors, overflow, negative variances
        model = engine.load_state_file(temporary, spec, source=shown)
    finally:
        os.unlink(temporary)
    check = engine.check_model(model, engine.load_dataset(dataset_name), source=shown)   # finite outputs or refused
    engine.save_checkpoint(target, model, {"kind": "uploaded original", "source_name": shown, "source_sha256": digest,
                                           "dataset": dataset_name, "owner": owner,
                                           "sample_check": {"accuracy": check.accuracy, "chance": check.chance,
                                                            "samples": check.samples, "at_chance": check.at_chance}},
                           overwrite=True)
    return target


def describe(path: str | Path) -> str:
    """Plain text (show with `st.text`): the user's file name and the start of its sha256."""
    try:
        record = engine.read_sidecar(path)
    except engine.CheckpointError:
        return Path(path).name
    return f"{record.get('source_name', Path(path).name)} (sha256 {str(record.get('source_sha256', ''))[:12]}…)"


def warning(path: str | Path) -> str | None:
    """A warning when the accepted model's accuracy on the sample of test images was at chance, else None."""
    try:
        check = engine.read_sidecar(path).get("sample_check") or {}
    except engine.CheckpointError:
        return None
    if not check.get("at_chance"):
        return None
    return (f"This model gets {check['accuracy']:.1f} % of {check['samples']} test images right — chance is "
            f"{check['chance']:.0f} %. It may be untrained or trained for another dataset; runs will start from it "
            "anyway, and their figures will say little.")
