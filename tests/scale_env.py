"""Shared by the executor, population, tuning and bench tests: a tiny dataset as an .npz (so a Ray worker
can open it), a tiny original model checkpoint, and small job functions (importable by Ray workers)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def tiny_dataset(name: str = "tiny", seed: int = 0):
    """A 4-class 12×12 synthetic dataset (200 training images, 40 of them validation; 40 test): noise plus a class
    offset, so a small CNN learns it in seconds."""
    from engine.data import from_arrays

    rng = np.random.default_rng(seed)
    labels = np.arange(240) % 4
    images = (rng.integers(0, 120, (240, 12, 12)) + labels[:, None, None] * 40).astype(np.uint8)
    return from_arrays(name, ("a", "b", "c", "d"), images[:200], labels[:200], images[200:], labels[200:],
                       hflip=True, validation_size=40, source="synthetic")


def make_tiny_assets(folder: Path, *, name: str = "tiny", seed: int = 0, epochs: int = 2) -> tuple[Path, Path]:
    """(dataset .npz, original checkpoint) of `tiny_dataset`, the original trained ``epochs`` epochs, in seconds."""
    import dataclasses

    import torch

    from engine.executor import save_dataset_npz
    from engine.references import train_and_save
    from engine.training import RECIPES

    dataset = tiny_dataset(name, seed)
    npz = save_dataset_npz(dataset, folder / "tiny.npz")
    recipe = dataclasses.replace(RECIPES["small-cnn"], epochs=epochs)
    path, _ = train_and_save(dataset, folder / "original.safetensors", recipe=recipe, device=torch.device("cpu"))
    return npz, path


def square(x: int) -> dict:
    return {"x": x, "square": x * x}


def fail_on(x: int, bad: int) -> dict:
    if x == bad:
        raise ValueError(f"bad input {x}")
    return {"x": x}


def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def counting(steps: int, pause: float, on_progress=None, should_stop=None) -> int:
    """A long job with a batch loop: reports each step and honours the stop check, like a training run."""
    from engine.progress import Reporter

    reporter = Reporter(on_progress, should_stop)
    for step in range(1, steps + 1):
        time.sleep(pause)
        reporter.step("counting", step, steps, value=float(step))
    return steps
