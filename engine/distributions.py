"""Membership-score samples per model: what the privacy page draws as distributions, and each model's
prediction and confidence on the feature map's points (the feature-space hover). The attacks themselves live
in the insights; these are the raw scores beside them, saved as ``scores.npz`` in the run directory."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from engine.attacks import membership_scores
from engine.data import ImageDataset
from engine.splits import DataSplit
from engine.training import predict

SCORES_NAME = "scores.npz"


def score_distributions(models: dict[str, nn.Module], dataset: ImageDataset, split: DataSplit, *,
                        device: torch.device, seed: int = 0, count: int = 500, map_ids=None) -> dict[str, np.ndarray]:
    """``{"<model>/<forget|unseen>/<score>": values}`` for a seeded sample of ``count`` forget images and of
    unseen test images (the forgotten classes' test images when there are any), plus
    ``"<model>/map/prediction|confidence"`` on ``map_ids`` (training-pool ids)."""
    rng = np.random.default_rng(seed)
    nonmembers = split.test_forget if len(split.test_forget) else split.test
    groups = {"forget": (dataset.train_images, dataset.train_labels, split.forget),
              "unseen": (dataset.test_images, dataset.test_labels, nonmembers)}
    arrays = {}
    for group, (images, labels, ids) in groups.items():
        ids = np.sort(rng.choice(ids, min(count, len(ids)), replace=False))
        for name, model in models.items():
            probabilities = predict(model, images[ids], device=device).probabilities
            for score, values in membership_scores(probabilities, labels.numpy()[ids]).items():
                arrays[f"{name}/{group}/{score}"] = values.astype(np.float32)
    if map_ids is not None:
        for name, model in models.items():
            probabilities = predict(model, dataset.train_images[np.asarray(map_ids)], device=device).probabilities
            arrays[f"{name}/map/prediction"] = probabilities.argmax(1).astype(np.int16)
            arrays[f"{name}/map/confidence"] = probabilities.max(1).astype(np.float32)
    return arrays


def save_score_distributions(run_dir: Path, arrays: dict[str, np.ndarray]) -> Path:
    path = Path(run_dir) / SCORES_NAME
    np.savez_compressed(path, **arrays)
    return path


def load_score_distributions(run_dir: Path | str) -> Optional[dict[str, np.ndarray]]:
    """The arrays of `score_distributions` saved in ``run_dir``, or None when it has none."""
    path = Path(run_dir) / SCORES_NAME
    if not path.is_file():
        return None
    with np.load(path) as stored:
        return {name: stored[name] for name in stored.files}
