"""FT — fine-tuning on the retain set (Warnecke et al. 2023; the SalUn benchmark's "FT" baseline).

Algorithm: a few epochs of cross-entropy on D_r starting from θ_o; forgetting comes only from
catastrophic forgetting of D_f, so it is weak in class-wise and random forgetting alike.

Notation (docs/method.md §1, §3): `session.retain` = D_r; `config.lr`, `config.epochs` = the grid-searched
learning rate and epoch count; momentum 0.9, weight decay 5e-4 (the original recipe's).
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.methods.common import MethodConfig, Session, cross_entropy_loss, option, retain_limit


@dataclass(frozen=True)
class FTConfig(MethodConfig):
    # Class-wise lr and epochs from the same grid (a class needs a much stronger push than a random subset, whose
    # samples the retained data still explains).
    SETTINGS = {"class": {"lr": 0.182, "epochs": 2}}
    # Fast mode (the app's UNLEARNING_LAB_FAST=1): caps that make a run take seconds; a smaller default stays.
    FAST = {"epochs": 1, "retain_fraction": 0.5}
    # lr and epochs: the random-10 % choice (grid, then Optuna re-tune: docs/tuning.md); class-wise: SETTINGS above
    lr: float = option(0.0239, "learning rate of SGD on the retain set", min=1e-5, max=1.0)
    epochs: int = option(3, "passes over the retain set", min=1, max=50)
    batch_size: int = option(128, "retain batch size", min=8, max=1024)
    retain_fraction: float = option(1.0, "share of the retain set drawn afresh each epoch (speed option)",
                                    min=0.01, max=1.0)


def unlearn(model, dataset, split, config: FTConfig | None = None, *, device, seed=0, on_progress=None,
            should_stop=None):
    config = config or FTConfig()
    session = Session("ft", model, dataset, split, config, device=device, seed=seed, on_progress=on_progress,
                      should_stop=should_stop)
    optimizer = session.sgd(config.lr, weight_decay=5e-4)
    limit = retain_limit(len(session.retain), config.retain_fraction)
    total = config.epochs * session.steps(len(session.retain), config.batch_size, limit)
    step = 0
    for _ in range(config.epochs):
        # 1. one epoch of CE on D_r (augmented like the original recipe)
        step = session.train_round(session.retain, cross_entropy_loss, optimizer, stage="fine-tune",
                                   batch_size=config.batch_size, augment=True, limit=limit, step=step, total=total)
    return session.finish()
