"""Weight saliency (SalUn) and the soft guidance WSS-CL puts on every update.

Step 0 (docs/method.md §2): at the original weights θ_o, model in eval mode,
    s = | Σ over forget mini-batches of ∇_θ ℓ_forget(f(x), y) |,      ℓ_forget = −CE by default,
one score per scalar parameter (conv, BN, linear). γ = the global threshold that keeps the top
`sparsity` fraction of scores.

Step 1: guidance weights w ∈ [0, 1]:
    soft     w = min(1, s / γ)
    sigmoid  w = σ((log s − log γ) / T)
    hard     w = 1[s ≥ γ]           (SalUn's mask)
    none     w = 1                  (ablation: no saliency)

`GuidedUpdate` applies w to the *whole* optimizer update (θ ← θ_before + w ⊙ (θ_after − θ_before)), so
momentum and weight decay cannot move a weight whose w is 0: it stays exactly frozen.
"""
from __future__ import annotations

import copy
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.data import ImageDataset
from engine.progress import Reporter
from engine.training import DeviceImages, autocast, batches

GUIDANCE_MODES = ("soft", "sigmoid", "hard", "none")

Scores = dict[str, torch.Tensor]


def negative_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return -F.cross_entropy(logits, labels, reduction="sum")


def kl_to_uniform(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Σ_i KL(u ‖ p(x_i)): the WSS-CL stage-1 loss (labels unused)."""
    log_p = F.log_softmax(logits.float(), dim=1)
    classes = logits.shape[1]
    return (-log_p.mean(1) - np.log(classes)).sum()


SALIENCY_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "ce": negative_cross_entropy,       # SalUn
    "kl_uniform": kl_to_uniform,        # the forgetting loss WSS-CL actually minimises
}


def saliency_scores(model: nn.Module, dataset: ImageDataset, indices: np.ndarray, *, device: torch.device,
                    loss: str = "ce", batch_size: int = 256, on_progress=None, should_stop=None) -> Scores:
    """|Σ_batches ∇_θ loss| for every parameter, at the model's current weights (eval mode).

    The model is not changed (gradients are taken on a private copy).

    Returns:
        {parameter name: non-negative tensor of the parameter's shape} on ``device``.
    """
    if loss not in SALIENCY_LOSSES:
        raise ValueError(f"unknown saliency loss {loss!r}; choose one of {', '.join(SALIENCY_LOSSES)}")
    reporter = Reporter(on_progress, should_stop)
    probe = copy.deepcopy(model).to(device).eval()
    names = [name for name, p in probe.named_parameters() if p.requires_grad]
    params = [p for _, p in probe.named_parameters() if p.requires_grad]
    totals = [torch.zeros_like(p) for p in params]
    data = DeviceImages.from_indices(dataset, indices, device)
    chunks = list(batches(len(data), batch_size, torch.Generator(), shuffle=False))
    for step, index in enumerate(chunks, 1):
        images, labels = data.batch(index)
        with autocast(device):
            value = SALIENCY_LOSSES[loss](probe(images), labels)
        for total, grad in zip(totals, torch.autograd.grad(value, params)):
            total.add_(grad.float())
        reporter.step("saliency", step, len(chunks))
    return {name: total.abs() for name, total in zip(names, totals)}


def saliency_threshold(scores: Scores, sparsity: float) -> float:
    """γ: the score at which the top ``sparsity`` fraction of all weights (globally) is kept."""
    if not 0.0 < sparsity <= 1.0:
        raise ValueError(f"sparsity must lie in (0, 1], got {sparsity}")
    flat = torch.cat([s.flatten().float().cpu() for s in scores.values()])
    keep = max(1, int(round(sparsity * flat.numel())))
    return float(torch.topk(flat, keep, sorted=False).values.min())


def guidance_weights(scores: Scores, mode: str = "soft", sparsity: float = 0.5,
                     temperature: float = 0.5) -> Scores:
    """Per-weight guidance w ∈ [0, 1] from saliency scores (see module docstring)."""
    if mode not in GUIDANCE_MODES:
        raise ValueError(f"unknown guidance mode {mode!r}; choose one of {', '.join(GUIDANCE_MODES)}")
    if mode == "none":
        return {name: torch.ones_like(s) for name, s in scores.items()}
    gamma = saliency_threshold(scores, sparsity)
    tiny = torch.finfo(torch.float32).tiny
    if mode == "hard":
        return {name: (s >= gamma).float() for name, s in scores.items()}
    if mode == "soft":
        if gamma <= 0:  # fewer than `sparsity` of the weights have any saliency: they all move fully
            return {name: (s > 0).float() for name, s in scores.items()}
        return {name: torch.clamp(s / gamma, max=1.0) for name, s in scores.items()}
    if not temperature > 0:
        raise ValueError(f"sigmoid guidance needs temperature > 0, got {temperature}")
    log_gamma = float(np.log(max(gamma, tiny)))
    return {name: torch.sigmoid((torch.log(s.clamp_min(tiny)) - log_gamma) / temperature) for name, s in scores.items()}


class GuidedUpdate:
    """Scale each optimizer update by the guidance weights: θ ← θ₀ + w ⊙ (θ₁ − θ₀).

    Usage:
        guided = GuidedUpdate(model, weights)
        loss.backward(); guided.step(optimizer)

    With ``weights=None`` it is a plain ``optimizer.step()``.
    """

    def __init__(self, model: nn.Module, weights: Optional[Scores]):
        self.pairs = []
        if weights is not None:
            params = dict(model.named_parameters())
            missing = sorted(set(params) - set(weights))
            if missing:
                raise ValueError(f"guidance weights lack parameters {missing[:3]}")
            self.pairs = [(params[name], weights[name].to(params[name].device)) for name in params
                          if not torch.all(weights[name] == 1)]

    @torch.no_grad()
    def step(self, optimizer: torch.optim.Optimizer) -> None:
        before = [p.detach().clone() for p, _ in self.pairs]
        optimizer.step()
        for (param, weight), old in zip(self.pairs, before):
            param.copy_(torch.lerp(old, param, weight))


def layer_summary(scores: Scores, weights: Scores) -> list[dict]:
    """Per parameter tensor: size, mean saliency, share with w = 1 (selected) and mean w."""
    rows = []
    for name, score in scores.items():
        w = weights[name]
        rows.append({"name": name, "size": int(score.numel()), "mean_saliency": float(score.float().mean()),
                     "selected": float((w >= 1.0).float().mean()), "mean_weight": float(w.float().mean())})
    return rows
