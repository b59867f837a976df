"""Weight-saliency maps: per-layer saliency, guidance weights and weight movement as 2-D arrays.

Every parameter tensor becomes a 2-D map for a heatmap:
    conv weight (out, in, k, k) -> (out, in·k·k)        rows = output channels, columns = inputs × kernel
    linear weight (out, in)     -> (out, in)
    1-D (BN scale/shift, bias)  -> (1, n)
Maps larger than `max_side` on an axis are block-averaged (factor ceil(side / max_side) on that axis), so
a ResNet-18 layer stays ≤ 256 × 256; `factors` records by how much. On an averaged hard-mask map a cell
is then the *share* of selected weights in its block, not 0/1.

Which weights are specific to which data: the same maps for a second forget set (e.g. class A vs class
B), the Jaccard overlap of the two hard masks per layer, and a difference map (hard_A − hard_B:
+1 = selected only for A, −1 only for B).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from engine.data import ImageDataset
from engine.saliency import Scores, guidance_weights
from engine.splits import DataSplit, ForgetSpec


def as_matrix(tensor: torch.Tensor | np.ndarray) -> np.ndarray:
    """A parameter as a 2-D float32 array (see module docstring)."""
    array = tensor.detach().float().cpu().numpy() if isinstance(tensor, torch.Tensor) else np.asarray(tensor, np.float32)
    if array.ndim == 0:
        return array.reshape(1, 1).astype(np.float32)
    if array.ndim == 1:
        return array.reshape(1, -1).astype(np.float32)
    return array.reshape(array.shape[0], -1).astype(np.float32)


def block_average(matrix: np.ndarray, max_side: int = 256) -> tuple[np.ndarray, tuple[int, int]]:
    """Average non-overlapping blocks so neither side exceeds ``max_side``; returns (map, (row, column) factors).

    The last block on an axis may be partial; it is averaged over the cells it has.

    Example:
        >>> block_average(np.ones((512, 300)), 256)[0].shape, block_average(np.ones((512, 300)), 256)[1]
        ((256, 150), (2, 2))
    """
    if max_side < 1:
        raise ValueError(f"max_side must be ≥ 1, got {max_side}")
    rows, cols = matrix.shape
    fr, fc = math.ceil(rows / max_side), math.ceil(cols / max_side)
    if fr == 1 and fc == 1:
        return matrix.astype(np.float32, copy=False), (1, 1)
    out_rows, out_cols = math.ceil(rows / fr), math.ceil(cols / fc)
    padded = np.full((out_rows * fr, out_cols * fc), np.nan, dtype=np.float64)
    padded[:rows, :cols] = matrix
    blocks = padded.reshape(out_rows, fr, out_cols, fc)
    return np.nanmean(blocks, axis=(1, 3)).astype(np.float32), (fr, fc)


@dataclass(frozen=True, eq=False)
class WeightMaps:
    """Per-layer maps (tuples aligned with `names`) and a per-layer summary (arrays of shape (L,))."""

    names: tuple[str, ...]             # parameter names, in the model's order
    shapes: tuple[tuple[int, ...], ...]  # each parameter's own shape
    factors: np.ndarray                # (L, 2) block-averaging factor (rows, columns); (1, 1) = full resolution
    saliency: tuple[np.ndarray, ...]   # |∇θ| on the forget set (2-D each)
    soft: tuple[np.ndarray, ...]       # soft guidance w = min(1, s/γ) ∈ [0, 1]
    hard: tuple[np.ndarray, ...]       # hard mask 1[s ≥ γ] (a share per cell when averaged)
    delta: tuple[np.ndarray, ...]      # |θ_unlearned − θ_original|
    compare_hard: tuple[np.ndarray, ...]  # the hard mask for the comparison forget set (empty tuple if none)
    difference: tuple[np.ndarray, ...]    # hard − compare_hard ∈ [−1, 1]
    size: np.ndarray                   # weights per layer
    selected: np.ndarray               # share of the layer's weights in the hard mask
    selected_compare: np.ndarray       # the same for the comparison set (NaN if none)
    jaccard: np.ndarray                # |A ∩ B| / |A ∪ B| of the two hard masks (NaN if none or both empty)
    mean_saliency: np.ndarray
    mean_soft: np.ndarray
    delta_norm: np.ndarray             # ‖Δθ‖₂ of the layer during unlearning
    relative_delta: np.ndarray         # ‖Δθ‖₂ / ‖θ_original‖₂
    changed: np.ndarray                # share of the layer's weights that moved at all (Δ ≠ 0)
    sparsity: float                    # the top share kept globally by the hard mask
    max_side: int
    forget_description: str
    compare_description: str           # "" when there is no comparison


def _jaccard(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.bool(), b.bool()
    union = int((a | b).sum())
    return float(int((a & b).sum()) / union) if union else float("nan")


def map_weights(original: nn.Module, unlearned: nn.Module, scores: Scores, *,
                compare_scores: Optional[Scores] = None, sparsity: float = 0.5, max_side: int = 256,
                forget_description: str = "", compare_description: str = "") -> WeightMaps:
    """Build every per-layer map and the per-layer summary.

    Args:
        original: θ_o (not changed).
        unlearned: the model after unlearning, same architecture (not changed).
        scores: saliency scores {parameter name: tensor}, e.g. from `engine.saliency.saliency_scores` on D_f.
        compare_scores: scores for a second forget set, for the A-vs-B comparison.
        sparsity: global top share for the hard mask (and γ of the soft weights).
        max_side: block-average maps larger than this on either axis.

    Returns:
        A `WeightMaps`. Shapes, e.g. for the small CNN: ``block2.0.weight`` (64, 32, 3, 3) -> (64, 144) with
        factors (1, 2); ``head.weight`` (10, 128) -> (10, 128).
    """
    soft = guidance_weights(scores, "soft", sparsity)
    hard = guidance_weights(scores, "hard", sparsity)
    other = guidance_weights(compare_scores, "hard", sparsity) if compare_scores is not None else None
    before = dict(original.named_parameters())
    after = dict(unlearned.named_parameters())
    names = tuple(name for name in before if name in scores)
    missing = [name for name in names if name not in after or after[name].shape != before[name].shape]
    if missing:
        raise ValueError(f"the unlearned model does not match the original at {missing[:3]}")

    def mapped(tensor) -> np.ndarray:
        return block_average(as_matrix(tensor), max_side)[0]

    maps = {key: [] for key in ("saliency", "soft", "hard", "delta", "compare_hard", "difference")}
    rows: dict[str, list] = {key: [] for key in ("size", "selected", "selected_compare", "jaccard", "mean_saliency",
                                                 "mean_soft", "delta_norm", "relative_delta", "changed", "factors")}
    with torch.no_grad():
        for name in names:
            theta = before[name].detach().float().cpu()
            step = after[name].detach().float().cpu() - theta
            score, w, mask = scores[name].float().cpu(), soft[name].float().cpu(), hard[name].float().cpu()
            maps["saliency"].append(mapped(score))
            maps["soft"].append(mapped(w))
            maps["hard"].append(mapped(mask))
            maps["delta"].append(mapped(step.abs()))
            rows["factors"].append(block_average(as_matrix(score), max_side)[1])
            rows["size"].append(score.numel())
            rows["selected"].append(float(mask.mean()))
            rows["mean_saliency"].append(float(score.mean()))
            rows["mean_soft"].append(float(w.mean()))
            rows["delta_norm"].append(float(step.norm()))
            rows["relative_delta"].append(float(step.norm() / theta.norm()) if float(theta.norm()) > 0 else float("nan"))
            rows["changed"].append(float((step != 0).float().mean()))
            if other is not None:
                second = other[name].float().cpu()
                maps["compare_hard"].append(mapped(second))
                maps["difference"].append(mapped(mask - second))
                rows["selected_compare"].append(float(second.mean()))
                rows["jaccard"].append(_jaccard(mask, second))
            else:
                rows["selected_compare"].append(float("nan"))
                rows["jaccard"].append(float("nan"))
    return WeightMaps(
        names=names, shapes=tuple(tuple(before[n].shape) for n in names),
        factors=np.asarray(rows.pop("factors"), dtype=np.int64).reshape(len(names), 2),
        **{key: tuple(value) for key, value in maps.items()},
        **{key: np.asarray(value, dtype=np.int64 if key == "size" else np.float64) for key, value in rows.items()},
        sparsity=float(sparsity), max_side=int(max_side), forget_description=forget_description,
        compare_description=compare_description if compare_scores is not None else "")


def comparison_ids(dataset: ImageDataset, split: DataSplit, spec: Optional[ForgetSpec], seed: int = 0):
    """The comparison forget set's ids within ``split.train`` and its description.

    Default: for class-wise forgetting, the next class not forgotten; otherwise a random set of D of the
    same size as D_f (seeded).
    """
    train = split.train
    labels = dataset.train_labels.numpy()
    if spec is None:
        if split.forget_classes:
            other = next(c % dataset.num_classes for c in range(max(split.forget_classes) + 1,
                                                                 max(split.forget_classes) + 1 + dataset.num_classes)
                         if c % dataset.num_classes not in split.forget_classes)
            spec = ForgetSpec(classes=(other,))
        else:
            rng = np.random.default_rng(seed + 1)
            ids = np.sort(rng.choice(train, len(split.forget), replace=False))
            return ids, f"a random set of {len(ids)} training samples"
    if spec.classes:
        ids = train[np.isin(labels[train], spec.classes)]
    elif spec.fraction is not None:  # the same draw as `make_split`
        rng = np.random.default_rng(spec.seed)
        ids = np.sort(train[rng.choice(len(train), int(round(spec.fraction * len(train))), replace=False)])
    else:
        ids = np.intersect1d(train, np.asarray(spec.sample_ids, np.int64))
    if len(ids) == 0:
        raise ValueError(f"the comparison forget set ({spec.describe()}) has no training samples")
    return ids, spec.describe(dataset.classes)
