"""RL — random labelling (Golatkar et al. 2020; SalUn's "RL" baseline), and the loop SalUn reuses.

Algorithm: each epoch, (1) CE on D_f with fresh random labels — drawn from the *other* classes, a
choice so that a relabel never restates the true class — then (2) CE on D_r with the true labels
(optionally on a fresh random share of D_r, a speed option). With guidance weights (SalUn's hard mask)
every update of both rounds is scaled by w.

Notation (docs/method.md §3): `session.forget` = D_f, `session.retain` = D_r, `weights` = w (None = all ones).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.methods.common import MethodConfig, Session, cross_entropy_loss, option, retain_limit


@dataclass(frozen=True)
class RLConfig(MethodConfig):
    # Class-wise lr and epochs from the same grid (a class needs a much stronger push than a random subset, whose
    # samples the retained data still explains).
    SETTINGS = {"class": {"lr": 0.1, "retain_fraction": 1.0}}
    # Fast mode (the app's UNLEARNING_LAB_FAST=1): caps that make a run take seconds; a smaller default stays.
    FAST = {"epochs": 1, "retain_fraction": 0.5}
    # lr and epochs: the random-10 % choice (grid, then Optuna re-tune: docs/tuning.md); class-wise: SETTINGS above
    lr: float = option(0.00162, "learning rate of both rounds", min=1e-5, max=1.0)
    epochs: int = option(2, "epochs of {random-label round, retain round}", min=1, max=50)
    batch_size: int = option(128, "batch size of both rounds", min=8, max=1024)
    retain_fraction: float = option(0.968, "share of the retain set drawn afresh each epoch (speed option)",
                                    min=0.01, max=1.0)


def random_label_rounds(session: Session, config, weights=None) -> None:
    """The RL loop (shared with SalUn, which passes its hard saliency mask as ``weights``)."""
    classes = session.dataset.num_classes
    generator = session.generator

    def random_label_loss(model, images, labels):
        shift = torch.randint(1, classes, labels.shape, generator=generator).to(labels.device)
        return F.cross_entropy(model(images), (labels + shift) % classes), {}

    guided = session.guided(weights)
    optimizer = session.sgd(config.lr, weight_decay=0.0 if weights is not None else 5e-4)
    limit = retain_limit(len(session.retain), config.retain_fraction)
    forget_steps = session.steps(len(session.forget), config.batch_size)
    retain_steps = session.steps(len(session.retain), config.batch_size, limit)
    forget_step = retain_step = 0
    for _ in range(config.epochs):
        # 1. CE on D_f with fresh random labels (guided)
        forget_step = session.train_round(session.forget, random_label_loss, optimizer, stage="random labels",
                                          batch_size=config.batch_size, guided=guided, step=forget_step,
                                          total=config.epochs * forget_steps)
        # 2. CE on D_r with the true labels (guided)
        retain_step = session.train_round(session.retain, cross_entropy_loss, optimizer, stage="retain",
                                          batch_size=config.batch_size, guided=guided, augment=True, limit=limit,
                                          step=retain_step, total=config.epochs * retain_steps)


def unlearn(model, dataset, split, config: RLConfig | None = None, *, device, seed=0, on_progress=None,
            should_stop=None):
    config = config or RLConfig()
    session = Session("rl", model, dataset, split, config, device=device, seed=seed, on_progress=on_progress,
                      should_stop=should_stop)
    random_label_rounds(session, config)
    return session.finish()
