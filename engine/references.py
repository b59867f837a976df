"""The original model and the Retrain references (exact unlearning): where they are, how they are trained,
what they score. Every question "which Retrain belongs to this forget set?" is answered here.

Two homes, two naming schemes, one lookup (`locate_reference`):
    assets/checkpoints/<dataset>/original.safetensors, retrain-class-<c>.safetensors   shipped ("precomputed"),
        rebuilt by ``python -m scripts.build_checkpoints``
    <folder>/<dataset>-<ForgetSpec.key()>[-fast].safetensors                          trained on demand for any
        other forget set ("computed"; the app keeps them in runs/_references)
Each checkpoint's sidecar JSON holds its metrics under the matching forget spec, and what it was trained under:
dataset, split seed (the validation hold-out, hence D_r) and recipe. A Retrain only stands for a run when all
three match (`matches_run`): a reference of split seed 0 differs from a split-seed-1 run by its retain set.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping, Optional

import numpy as np
import torch
from torch import nn

from engine.checkpoints import CheckpointError, load_checkpoint, read_sidecar, save_checkpoint
from engine.data import ASSETS_DIR, ImageDataset
from engine.evaluation import Evaluation, evaluate
from engine.metrics import GAP_KEYS
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


def matches_run(record: Mapping, dataset_name: str, split_seed: int = 0,
                recipe: Optional[Mapping] = None) -> bool:
    """Whether a reference's sidecar record was trained for this run: same dataset and split seed and, when
    ``recipe`` is given (the recipe the original model was trained with), the same recipe. Records written
    before the split seed was stored were all split seed 0."""
    if record.get("dataset") not in (None, dataset_name) or int(record.get("split_seed", 0)) != int(split_seed):
        return False
    return recipe is None or record.get("recipe") in (None, dict(recipe))


def _matching(path: Path, dataset_name: str, split_seed: int, recipe: Optional[Mapping]) -> bool:
    try:
        return matches_run(read_sidecar(path), dataset_name, split_seed, recipe)
    except CheckpointError:
        return False


def original_recipe(dataset_name: str, root: Path | None = None) -> Optional[dict]:
    """The recipe the shipped original of ``dataset_name`` was trained with (its sidecar), or None."""
    path = original_path(dataset_name, root)
    try:
        return read_sidecar(path).get("recipe") if path.is_file() else None
    except CheckpointError:
        return None


def find_reference(dataset_name: str, spec: ForgetSpec, root: Path | None = None, *, split_seed: int = 0,
                   recipe: Optional[Mapping] = None) -> Optional[Path]:
    """The precomputed Retrain checkpoint for ``spec`` if it exists on disk and was trained for this run:
    split seed ``split_seed`` and ``recipe`` (default: the shipped original's recipe in the same folder)."""
    path = reference_path(dataset_name, spec, root)
    if path is None or not path.is_file():
        return None
    recipe = recipe if recipe is not None else original_recipe(dataset_name, root)
    return path if _matching(path, dataset_name, split_seed, recipe) else None


def computed_reference_path(folder: Path, dataset_name: str, spec: ForgetSpec, *, fast: bool = False,
                            split_seed: int = 0) -> Path:
    """Where a Retrain trained on demand for ``spec`` is kept (fast-mode ones apart: 1-epoch references never
    pass for real ones; another split seed apart too, its retain set differs)."""
    split = f"-split{split_seed}" if split_seed else ""
    return Path(folder) / f"{dataset_name}-{spec.key()}{split}{'-fast' if fast else ''}.safetensors"


def locate_reference(dataset_name: str, spec: ForgetSpec, folder: Optional[Path] = None, *, fast: bool = False,
                     split_seed: int = 0, recipe: Optional[Mapping] = None) -> tuple[Optional[Path], str]:
    """(path, "precomputed" | "computed") of the Retrain model for this forget set and split seed, or (None, "")
    when none was trained for this run (another split seed or recipe does not count)."""
    path = find_reference(dataset_name, spec, split_seed=split_seed, recipe=recipe)
    if path is not None:
        return path, "precomputed"
    if folder is not None:
        path = computed_reference_path(folder, dataset_name, spec, fast=fast, split_seed=split_seed)
        if path.is_file() and _matching(path, dataset_name, split_seed, recipe):
            return path, "computed"
    return None, ""


def reference_metrics(dataset_name: str, spec: ForgetSpec, folder: Optional[Path] = None, *, fast: bool = False,
                      split_seed: int = 0, recipe: Optional[Mapping] = None) -> tuple[Optional[dict], str]:
    """The Retrain model's metrics on this forget set, from its sidecar (no model loaded), and its source."""
    path, source = locate_reference(dataset_name, spec, folder, fast=fast, split_seed=split_seed, recipe=recipe)
    if path is None:
        return None, ""
    try:
        return read_sidecar(path).get("metrics"), source
    except CheckpointError:
        return None, ""


def gap_scores(metrics: Optional[dict]) -> Optional[dict]:
    """The four figures Avg. Gap compares (UA, RA, TA, MIA) out of a metrics dict; None when any is missing."""
    if not metrics or not all(k in metrics for k in GAP_KEYS):
        return None
    return {k: float(metrics[k]) for k in GAP_KEYS}


def train_reference(dataset: ImageDataset, spec: ForgetSpec, folder: Path, *, recipe: TrainRecipe | None = None,
                    fast: bool = False, device: torch.device, seed: int = 0, split_seed: int = 0,
                    on_progress: Optional[ProgressCallback] = None,
                    should_stop: Optional[StopCheck] = None) -> tuple[Path, dict]:
    """Exact unlearning for a forget set without a reference: train, evaluate, save under ``folder``.
    Returns (path, metrics); an existing one is returned as it is. Cancelled: nothing is written."""
    out = computed_reference_path(folder, dataset.name, spec, fast=fast, split_seed=split_seed)
    if out.is_file():
        return out, read_sidecar(out).get("metrics", {})
    path, evaluation = train_and_save(dataset, out, forget=spec, recipe=recipe, device=device, seed=seed,
                                      split_seed=split_seed,
                                      on_progress=on_progress, should_stop=should_stop, extra={"fast": fast})
    return path, evaluation.to_dict()


def reference_scores_for(dataset: ImageDataset, split: DataSplit, reference=None, *, device: torch.device,
                         split_seed: int = 0) -> Optional[dict]:
    """Retrain scores from: a dict of scores, a Retrain model, a checkpoint path, or the shipped reference
    (only one trained for ``split_seed``; None when there is none)."""
    if reference is None:
        path = find_reference(dataset.name, split.spec, split_seed=split_seed) if split.spec is not None else None
        if path is None:
            return None
        return gap_scores(read_sidecar(path).get("metrics", {}))
    if isinstance(reference, Mapping):
        return {k: float(reference[k]) for k in GAP_KEYS}
    if isinstance(reference, (str, Path)):
        reference, _ = load_checkpoint(reference, device=device)
    if isinstance(reference, nn.Module):
        return evaluate(reference, dataset, split, device=device).scores()
    raise ValueError(f"reference must be scores, a model or a checkpoint path, not {type(reference).__name__}")


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
                   on_progress: Optional[ProgressCallback] = None, should_stop: Optional[StopCheck] = None,
                   extra: Optional[dict] = None) -> tuple[Path, Evaluation | None]:
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
              "metrics": metrics, **(extra or {})}
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
    return read_sidecar(path)["model"]["architecture"]
