"""A run's identity: what makes two runs compute the same numbers, as one short string.

Runs are deterministic for a given original model, forget set, method, resolved config and seed on one kind of
device with one torch build (tests/test_identity.py checks a fresh run against a stored one field by field), so
a run with the same identity need not be computed twice: the app serves the finished one ("shared result") or
lets a second request join the one in progress.

    identity = sha256(original model's sha256, ForgetSpec.key(), method, config.to_dict(), seed, dataset,
                      device class ("cpu" / "cpu-bf16" / "cuda"), torch version, fast mode, IDENTITY_VERSION)[:24]

The device class, not the device's name: thread counts and GPU models are not part of it (one Space, one kind
of device). A CPU that trains in bf16 (`engine.training.native_cpu_bf16`) is a class of its own ("cpu-bf16"):
its runs compute other numbers than an fp32-only CPU's. IDENTITY_VERSION changes when the engine changes what a
run computes for the same inputs (2: bf16 on CPU, repair rounds augmented as the original's recipe).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

IDENTITY_VERSION = 2
_SHA_CACHE: dict[tuple, str] = {}


def original_sha256(dataset_name: str, original: Optional[str] = None) -> str:
    """The sha256 of the model a run starts from: the shipped original's (from its sidecar) or an upload's."""
    from engine.checkpoints import read_sidecar
    from engine.references import original_path

    path = Path(original) if original else original_path(dataset_name)
    try:
        stat = path.stat()
    except OSError:
        return "missing"
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _SHA_CACHE:
        try:
            digest = read_sidecar(path).get("sha256")
        except Exception:  # noqa: BLE001 — no sidecar: hash the bytes
            digest = None
        _SHA_CACHE[key] = digest or hashlib.sha256(path.read_bytes()).hexdigest()
    return _SHA_CACHE[key]


def device_class(device) -> str:
    """"cpu", "cpu-bf16" or "cuda" from a torch.device, a device string or a record's device text ("CPU (2 threads)",
    "CPU (2 threads, bf16)", "Ray cluster · NVIDIA H200", "worker process · CPU (2 threads)": the part after the
    placement counts). A torch.device or a bare "cpu" names this machine's CPU, bf16 where it trains in bf16."""
    if hasattr(device, "type") or str(device).strip().lower() == "cpu":
        from engine.training import native_cpu_bf16

        kind = getattr(device, "type", "cpu")
        return "cuda" if kind == "cuda" else ("cpu-bf16" if native_cpu_bf16() else "cpu")
    text = str(device or "cpu").split("·")[-1].strip().lower()
    if text.startswith("cpu") or not text:
        return "cpu-bf16" if "bf16" in text else "cpu"
    return "cuda"


def run_identity(*, original_sha: str, forget_key: str, method: str, config: dict, seed: int, dataset: str,
                 device: str, torch_version: str, fast: bool) -> str:
    values = {"original": original_sha, "forget": forget_key, "method": method, "config": config,
              "seed": int(seed), "dataset": dataset, "device": device_class(device),
              "torch": str(torch_version).split("+")[0], "fast": bool(fast), "version": IDENTITY_VERSION}
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:24]


def record_identity(record) -> Optional[str]:
    """A record's identity: the one stored when it started, else (records written before identities existed)
    computed from its fields, taking a run without an upload as started from today's shipped original."""
    if getattr(record, "identity", None):
        return record.identity
    if record.forget is None or not record.method or record.kind != "unlearned":
        return None
    return run_identity(original_sha=original_sha256(record.dataset, record.original), forget_key=record.forget.key(),
                        method=record.method, config=record.config, seed=record.seed, dataset=record.dataset,
                        device=record.device, torch_version=(record.versions or {}).get("torch", ""),
                        fast=record.fast)
