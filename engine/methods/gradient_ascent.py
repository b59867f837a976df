"""GA / NegGrad — gradient ascent on the forget set (Thudi et al. 2022; SalUn's "GA" baseline).

Algorithm: minimise −CE(f(x), y) over D_f for a few epochs with a very small learning rate. Fast but
blunt: it drives the forget loss up without any repair of D_r, so RA/TA fall when it runs too long.

Notation (docs/method.md §3): `session.forget` = D_f; `config.lr`, `config.epochs` are grid-searched.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F

from engine.methods.common import MethodConfig, Session, option


@dataclass(frozen=True)
class GAConfig(MethodConfig):
    # Class-wise lr and epochs from the same grid (a class needs a much stronger push than a random subset, whose
    # samples the retained data still explains).
    SETTINGS = {"class": {"lr": 0.000111}}
    # Fast mode (the app's UNLEARNING_LAB_FAST=1): caps that make a run take seconds; a smaller default stays.
    FAST = {"epochs": 1}
    # lr and epochs: the random-10 % choice (grid, then Optuna re-tune: docs/tuning.md); class-wise: SETTINGS above
    lr: float = option(0.000422, "learning rate of gradient ascent on the forget set", min=1e-6, max=0.1)
    epochs: int = option(6, "passes over the forget set", min=1, max=50)
    batch_size: int = option(128, "forget batch size", min=8, max=1024)


def negative_cross_entropy(model, images, labels):
    return -F.cross_entropy(model(images), labels), {}


def unlearn(model, dataset, split, config: GAConfig | None = None, *, device, seed=0, on_progress=None,
            should_stop=None):
    config = config or GAConfig()
    session = Session("ga", model, dataset, split, config, device=device, seed=seed, on_progress=on_progress,
                      should_stop=should_stop)
    optimizer = session.sgd(config.lr)
    total = config.epochs * session.steps(len(session.forget), config.batch_size)
    step = 0
    for _ in range(config.epochs):
        # 1. one epoch of −CE on D_f
        step = session.train_round(session.forget, negative_cross_entropy, optimizer, stage="gradient ascent",
                                   batch_size=config.batch_size, step=step, total=total)
    return session.finish()
