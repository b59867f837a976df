"""Trained checkpoints shipped in assets/: the original model and the exact-unlearning references.

Layout: ``assets/checkpoints/<dataset>/original.safetensors`` and ``retrain-class-<c>.safetensors``
(each with its sidecar JSON holding the metrics under the matching forget spec), rebuilt by
``python -m scripts.build_checkpoints``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from engine.checkpoints import load_checkpoint, save_checkpoint
from engine.data import ASSETS_DIR, ImageDataset
from engine.evaluation import Evaluation, evaluate
from engine.models import build_model, spec_for
from engine.progress import ProgressCallback, StopCheck
from engine.splits import DataSplit, ForgetSpec, make_split, training_indices
from engine.training import RECIPES, TrainRecipe, device_name, place, seed_everything, train_model

CHECKPOINT_DIR = ASSETS_DIR / "checkpoints"


def checkpoint_dir(dataset_name: str, root: Path | None = None) -> Path:
    return (root or CHECKPOINT_DIR) / dataset_name


def original_path(dataset_name: str, root: Path | None = None) -> Path:
    return checkpoint_dir(dataset_name, root) / "original.safetensors"


def reference_path(dataset_name: str, spec: ForgetSpec, root: Path | None = None) -> Optional[Path]:
    """Where a precomputed Retrain for this forget spec lives (single-class specs only), or None."""
    if spec.kind == "class" and len(spec.classes) == 1:
        return checkpoint_dir(dataset_name, root) / f"retrain-class-{spec.classes[0]}.safetensors"
    return None


def find_reference(dataset_name: str, spec: ForgetSpec, root: Path | None = None) -> Optional[Path]:
    """The precomputed Retrain checkpoint for ``spec`` if it exists on disk."""
    path = reference_path(dataset_name, spec, root)
    return path if path is not None and path.is_file() else None


def train_from_scratch(dataset: ImageDataset, indices: np.ndarray, *, architecture: str = "small-cnn",
                       recipe: TrainRecipe | None = None, device: torch.device, seed: int = 0,
                       stage: str = "train", on_progress: Optional[ProgressCallback] = None,
                       should_stop: Optional[StopCheck] = None) -> nn.Module:
    """A freshly initialised model (weights seeded by ``seed``) trained on ``indices`` with the recipe."""
    recipe = recipe or RECIPES[architecture]
    seed_everything(seed)
    model = place(build_model(spec_for(dataset, architecture)), device)
    return train_model(model, dataset, indices, recipe, device=device, seed=seed, stage=stage,
                       on_progress=on_progress, should_stop=should_stop)


def retrain(dataset: ImageDataset, split: DataSplit, *, architecture: str = "small-cnn",
            recipe: TrainRecipe | None = None, device: torch.device, seed: int = 0,
            on_progress: Optional[ProgressCallback] = None, should_stop: Optional[StopCheck] = None) -> nn.Module:
    """Exact unlearning: train from scratch on D_r with the original recipe (the gold standard)."""
    return train_from_scratch(dataset, split.retain, architecture=architecture, recipe=recipe, device=device,
                              seed=seed, stage="retrain", on_progress=on_progress, should_stop=should_stop)


def train_and_save(dataset: ImageDataset, out: Path, *, forget: Optional[ForgetSpec] = None,
                   architecture: str = "small-cnn", recipe: TrainRecipe | None = None, device: torch.device,
                   seed: int = 0, split_seed: int = 0, overwrite: bool = False,
                   on_progress: Optional[ProgressCallback] = None,
                   should_stop: Optional[StopCheck] = None) -> tuple[Path, Evaluation | None]:
    """Train the original model (``forget=None``) or a Retrain reference, evaluate it, save checkpoint + record."""
    recipe = recipe or RECIPES[architecture]
    if Path(out).with_suffix(".safetensors").exists() and not overwrite:
        raise FileExistsError(f"{out} exists; refusing to overwrite it (pass overwrite=True / --overwrite)")
    split = make_split(dataset, forget, split_seed) if forget is not None else None
    indices = split.retain if split is not None else training_indices(dataset, split_seed)
    start = time.perf_counter()
    model = train_from_scratch(dataset, indices, architecture=architecture, recipe=recipe, device=device, seed=seed,
                               stage="retrain" if forget else "train", on_progress=on_progress,
                               should_stop=should_stop)
    seconds = time.perf_counter() - start
    evaluation = evaluate(model, dataset, split, device=device) if split is not None else None
    metrics = evaluation.to_dict() if evaluation is not None else {}
    if split is None:  # the original model: report plain accuracies on its own training/test data
        from engine.metrics import accuracy
        from engine.training import predict

        test = predict(model, dataset.test_images, device=device)
        metrics = {"test_acc": accuracy(test.predictions, dataset.test_labels.numpy())}
    record = {"kind": "retrain" if forget else "original", "dataset": dataset.name, "split_seed": split_seed,
              "forget": forget.to_dict() if forget else None, "recipe": recipe.to_dict(), "seed": seed,
              "train_size": int(len(indices)), "seconds": seconds, "device": device_name(device),
              "metrics": metrics}
    return save_checkpoint(out, model, record, overwrite=overwrite), evaluation


def load_original(dataset: ImageDataset, *, device: torch.device | str = "cpu",
                  root: Path | None = None) -> tuple[nn.Module, dict]:
    """The shipped original model for ``dataset`` (checked against the dataset's shape)."""
    path = original_path(dataset.name, root)
    if not path.is_file():
        raise FileNotFoundError(f"no original checkpoint for {dataset.name} at {path}; train one with "
                                f"`python -m engine train --dataset {dataset.name}`")
    return load_checkpoint(path, expected=spec_for(dataset, _architecture_of(path)), device=device)


def _architecture_of(path: Path) -> str:
    from engine.checkpoints import read_sidecar

    return read_sidecar(path)["model"]["architecture"]
