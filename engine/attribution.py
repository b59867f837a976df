"""Input attributions through captum: where in the image a model looks for its answer.

Three methods, one verb (`attribute`), the same images and targets for every model so that the maps
compare:
    integrated_gradients  IG from an all-black baseline (32 steps), |·| summed over colour channels
    grad_cam              Grad-CAM on `model.last_conv`, ReLU-ed, bilinearly upsampled to the image
    saliency              |∂ logit_target / ∂ x|, max over colour channels (Simonyan et al. 2014)

Normalisation to [0, 1] is *joint* over the models compared (per image and method): the 99.5th
percentile of the pooled maps maps to 1 (values above are clipped). A model that no longer responds to
the image (e.g. after forgetting its class) therefore shows a dimmer map instead of being rescaled to
look as confident as the original. `scale` keeps each map's own maximum, so a per-map view is one
division away.

Models are used as given: put in eval mode for the duration and restored afterwards; their weights are
never changed (captum differentiates with respect to the inputs only).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from engine.data import to_float
from engine.progress import Reporter
from engine.splits import DataSplit

ATTRIBUTION_METHODS = ("integrated_gradients", "grad_cam", "saliency")


def attribute(model: nn.Module, images: torch.Tensor, targets: torch.Tensor | Sequence[int], method: str, *,
              device: torch.device, steps: int = 32) -> np.ndarray:
    """Raw, non-negative attribution maps of one model, one method.

    Args:
        model: a model with ``last_conv`` (for Grad-CAM); not changed.
        images: uint8 (N, C, H, W).
        targets: the class to explain per image (N,).
        method: one of ``ATTRIBUTION_METHODS``.
        steps: integration steps of Integrated Gradients.

    Returns:
        float32 (N, H, W), ≥ 0, not normalised.

    Example:
        >>> attribute(model, data.train_images[:4], [0, 1, 2, 3], "grad_cam", device=cpu).shape
        (4, 28, 28)
    """
    if method not in ATTRIBUTION_METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose one of {', '.join(ATTRIBUTION_METHODS)}")
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Saliency

    inputs = to_float(images.to(device)).requires_grad_(True)
    target = torch.as_tensor(np.asarray(targets), dtype=torch.int64, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            if method == "integrated_gradients":
                raw = IntegratedGradients(model).attribute(inputs, baselines=torch.zeros_like(inputs), target=target,
                                                           n_steps=steps, internal_batch_size=256)
                maps = raw.abs().sum(1)
            elif method == "saliency":
                maps = Saliency(model).attribute(inputs, target=target, abs=True).amax(1)
            else:
                layer = getattr(model, "last_conv", None)
                if layer is None:
                    raise ValueError(f"{type(model).__name__} has no last_conv layer for Grad-CAM")
                cam = LayerGradCam(model, layer).attribute(inputs, target=target, relu_attributions=True)
                maps = LayerAttribution.interpolate(cam, tuple(inputs.shape[-2:]), interpolate_mode="bilinear")[:, 0]
    finally:
        model.train(was_training)
    return maps.detach().float().clamp_min(0).cpu().numpy()


def normalise_jointly(maps: np.ndarray, percentile: float = 99.5) -> np.ndarray:
    """Scale maps (M, N, H, W) — M models, N images — into [0, 1] per image, jointly over the models."""
    maps = np.asarray(maps, dtype=np.float32)
    pooled = np.moveaxis(maps, 1, 0).reshape(maps.shape[1], -1)
    top = np.percentile(pooled, percentile, axis=1) if pooled.size else np.zeros(maps.shape[1])
    top = np.where(top > 0, top, 1.0).astype(np.float32)
    return np.clip(maps / top[None, :, None, None], 0.0, 1.0)


@dataclass(frozen=True, eq=False)
class Attributions:
    """Maps for N chosen images under M models and K methods, normalised to [0, 1]."""

    models: tuple[str, ...]       # e.g. ("original", "unlearned", "retrained")
    methods: tuple[str, ...]      # ATTRIBUTION_METHODS
    sample_ids: np.ndarray        # (N,) training-pool ids
    images: np.ndarray            # (N, H, W, C) uint8, ready to draw
    labels: np.ndarray            # (N,) true labels
    targets: np.ndarray           # (N,) the class explained (the same for every model)
    in_forget: np.ndarray         # (N,) bool
    maps: np.ndarray              # (M, K, N, H, W) float32 in [0, 1], joint per (method, image) over models
    scale: np.ndarray             # (M, K, N) each raw map's maximum
    predictions: np.ndarray       # (M, N) each model's predicted class
    target_probability: np.ndarray  # (M, N) each model's softmax probability of the target


def model_attributions(model: nn.Module, images: torch.Tensor, targets: np.ndarray, *, device: torch.device,
                       methods: Sequence[str] = ATTRIBUTION_METHODS, steps: int = 32,
                       should_stop=None) -> dict[str, np.ndarray]:
    """One model's raw maps (K, N, H, W), predicted classes (N,) and target probabilities (N,): the part of
    `explain` that depends on a single model (what a cache keeps per model)."""
    from engine.training import predict

    reporter = Reporter(None, should_stop)
    targets = np.asarray(targets, dtype=np.int64)
    outputs = predict(model, images, device=device)
    raw = np.zeros((len(methods), len(targets), *images.shape[-2:]), dtype=np.float32)
    for k, method in enumerate(methods):
        reporter.check()
        raw[k] = attribute(model, images, targets, method, device=device, steps=steps)
    return {"raw": raw, "predictions": outputs.predictions.astype(np.int64),
            "probability": outputs.probabilities[np.arange(len(targets)), targets].astype(np.float32)}


def explain(models: dict[str, nn.Module], images: torch.Tensor, labels: np.ndarray, *, device: torch.device,
            sample_ids: Optional[np.ndarray] = None, in_forget: Optional[np.ndarray] = None,
            targets: Optional[np.ndarray] = None, methods: Sequence[str] = ATTRIBUTION_METHODS,
            steps: int = 32, precomputed: Optional[dict[str, dict[str, np.ndarray]]] = None,
            on_progress=None, should_stop=None) -> Attributions:
    """Every method for every model on the same images and targets (default target: the true label).

    Args:
        models: {name: model}, e.g. {"original": ..., "unlearned": ..., "retrained": ...}.
        images: uint8 (N, C, H, W).
        labels: (N,) true labels.
        precomputed: {name: `model_attributions(...)`} for models already explained (e.g. from a cache)
            on the same images, targets, methods and steps.
    """
    reporter = Reporter(on_progress, should_stop)
    labels = np.asarray(labels, dtype=np.int64)
    targets = labels.copy() if targets is None else np.asarray(targets, dtype=np.int64)
    count = len(labels)
    parts = []
    for m, (name, model) in enumerate(models.items()):
        reporter.check()
        part = (precomputed or {}).get(name)
        parts.append(part if part is not None else model_attributions(
            model, images, targets, device=device, methods=methods, steps=steps, should_stop=should_stop))
        reporter.report("attributions", m + 1, len(models))
    raw = np.stack([part["raw"] for part in parts])
    maps = np.stack([normalise_jointly(raw[:, k]) for k in range(len(methods))], axis=1)
    return Attributions(
        models=tuple(models), methods=tuple(methods),
        sample_ids=np.asarray(sample_ids if sample_ids is not None else np.arange(count), dtype=np.int64),
        images=images.permute(0, 2, 3, 1).contiguous().cpu().numpy().astype(np.uint8),
        labels=labels, targets=targets,
        in_forget=np.asarray(in_forget if in_forget is not None else np.zeros(count, bool), dtype=bool),
        maps=maps, scale=raw.reshape(*raw.shape[:3], -1).max(-1) if count else np.zeros(raw.shape[:3], np.float32),
        predictions=np.stack([part["predictions"] for part in parts]),
        target_probability=np.stack([part["probability"] for part in parts]))


def default_attribution_ids(split: DataSplit, count: int, seed: int = 0) -> np.ndarray:
    """¾ forget samples and ¼ retain samples (at least one of each when both exist), seeded."""
    rng = np.random.default_rng(seed)
    forget_count = min(len(split.forget), max(1, (3 * count + 3) // 4))
    retain_count = min(len(split.retain), count - forget_count)
    return np.concatenate([rng.choice(split.forget, forget_count, replace=False),
                           rng.choice(split.retain, retain_count, replace=False)]).astype(np.int64)
