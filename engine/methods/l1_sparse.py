"""ℓ1-sparse — sparsity-aware unlearning (Jia et al., NeurIPS 2023, "Model sparsity can simplify
machine unlearning").

Algorithm: fine-tune on D_r with the extra penalty α_t‖θ‖₁, α_t decaying linearly from α to 0 over the
run, so the model is pushed toward a sparse solution early and repaired late.

Notation (docs/method.md §3): `session.retain` = D_r, `config.alpha` = α, `alpha_at(step)` = α_t.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.methods.common import MethodConfig, Session, option, retain_limit


@dataclass(frozen=True)
class L1SparseConfig(MethodConfig):
    # Class-wise lr and epochs from the same grid (a class needs a much stronger push than a random subset, whose
    # samples the retained data still explains).
    SETTINGS = {"class": {"lr": 0.1, "epochs": 2}}
    # Fast mode (the app's UNLEARNING_LAB_FAST=1): caps that make a run take seconds; a smaller default stays.
    FAST = {"epochs": 1, "retain_fraction": 0.5}
    # lr and epochs: the random-10 % choice (grid, then Optuna re-tune: docs/tuning.md); class-wise: SETTINGS above
    lr: float = option(0.0239, "learning rate of SGD on the retain set", min=1e-5, max=1.0)
    epochs: int = option(3, "passes over the retain set", min=1, max=50)
    alpha: float = option(1e-4, "initial weight α of the ℓ1 penalty (decays linearly to 0)", min=0.0, max=1e-2)
    batch_size: int = option(128, "retain batch size", min=8, max=1024)
    retain_fraction: float = option(1.0, "share of the retain set drawn afresh each epoch (speed option)",
                                    min=0.01, max=1.0)


def unlearn(model, dataset, split, config: L1SparseConfig | None = None, *, device, seed=0, on_progress=None,
            should_stop=None):
    config = config or L1SparseConfig()
    session = Session("l1_sparse", model, dataset, split, config, device=device, seed=seed,
                      on_progress=on_progress, should_stop=should_stop)
    optimizer = session.sgd(config.lr, weight_decay=5e-4)
    limit = retain_limit(len(session.retain), config.retain_fraction)
    total = config.epochs * session.steps(len(session.retain), config.batch_size, limit)
    state = {"step": 0}

    def sparse_loss(model, images, labels):
        alpha = config.alpha * (1.0 - state["step"] / total)
        state["step"] += 1
        penalty = torch.stack([p.abs().sum() for p in model.parameters()]).sum()
        ce = F.cross_entropy(model(images), labels)
        return ce + alpha * penalty, {"ce": ce, "l1": penalty}

    step = 0
    for _ in range(config.epochs):
        # 1. one epoch of CE + α_t‖θ‖₁ on D_r
        step = session.train_round(session.retain, sparse_loss, optimizer, stage="sparse fine-tune",
                                   batch_size=config.batch_size, augment=True, limit=limit, step=step, total=total)
    return session.finish()
