"""SCRUB — teacher–student unlearning (Kurmanji et al., NeurIPS 2023, "Towards unbounded machine unlearning").

Algorithm: the student starts as a copy of the teacher θ_o. For the first `max_epochs` epochs a "max"
round over D_f raises KL(teacher ‖ student) (the student moves away from the teacher on forget data);
every epoch a "min" round over D_r lowers CE + `kd_weight`·KL(teacher ‖ student) (it stays close on
retained data). Both KL terms use temperature T with the usual T² factor.

Notation (docs/method.md §3): `teacher` = f_θo (frozen, eval mode), `session.model` = the student,
`session.forget` = D_f, `session.retain` = D_r.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from engine.methods.common import MethodConfig, Session, option, retain_limit


@dataclass(frozen=True)
class SCRUBConfig(MethodConfig):
    # Class-wise lr and epochs from the same grid (a class needs a much stronger push than a random subset, whose
    # samples the retained data still explains).
    SETTINGS = {"class": {"lr": 0.00376, "epochs": 3}}
    # Fast mode (the app's UNLEARNING_LAB_FAST=1): caps that make a run take seconds; a smaller default stays.
    FAST = {"epochs": 1, "retain_fraction": 0.5, "max_epochs": 1}
    # lr and epochs: the random-10 % choice (grid, then Optuna re-tune: docs/tuning.md); class-wise: SETTINGS above
    lr: float = option(0.00225, "learning rate of both rounds", min=1e-5, max=1.0)
    epochs: int = option(4, "epochs (each: an optional max round, then a min round)", min=1, max=50)
    max_epochs: int = option(2, "how many of the first epochs include a max round on D_f", min=0, max=50)
    kd_temperature: float = option(4.0, "distillation temperature T", min=0.5, max=20.0)
    kd_weight: float = option(1.0, "weight of KL(teacher‖student) in the min round", min=0.0, max=100.0)
    batch_size: int = option(128, "batch size of both rounds", min=8, max=1024)
    retain_fraction: float = option(0.3, "share of the retain set drawn afresh each epoch (speed option)",
                                    min=0.01, max=1.0)


def distillation_kl(student_logits, teacher_logits, temperature: float) -> torch.Tensor:
    """KL(softmax(t/T) ‖ softmax(s/T)) · T², averaged over the batch."""
    log_student = F.log_softmax(student_logits.float() / temperature, 1)
    teacher = F.softmax(teacher_logits.float() / temperature, 1)
    return F.kl_div(log_student, teacher, reduction="batchmean") * temperature ** 2


def unlearn(model, dataset, split, config: SCRUBConfig | None = None, *, device, seed=0, on_progress=None,
            should_stop=None):
    config = config or SCRUBConfig()
    session = Session("scrub", model, dataset, split, config, device=device, seed=seed, on_progress=on_progress,
                      should_stop=should_stop)
    teacher = copy.deepcopy(session.model).eval().requires_grad_(False)
    temperature = config.kd_temperature

    def max_loss(student, images, labels):
        with torch.no_grad():
            target = teacher(images)
        return -distillation_kl(student(images), target, temperature), {}

    def min_loss(student, images, labels):
        with torch.no_grad():
            target = teacher(images)
        logits = student(images)
        ce, kl = F.cross_entropy(logits, labels), distillation_kl(logits, target, temperature)
        return ce + config.kd_weight * kl, {"ce": ce, "kl": kl}

    optimizer = session.sgd(config.lr, weight_decay=5e-4)
    limit = retain_limit(len(session.retain), config.retain_fraction)
    max_rounds = min(config.max_epochs, config.epochs)
    max_total = max_rounds * session.steps(len(session.forget), config.batch_size)
    min_total = config.epochs * session.steps(len(session.retain), config.batch_size, limit)
    max_step = min_step = 0
    for epoch in range(config.epochs):
        # 1. max round: move away from the teacher on D_f
        if epoch < max_rounds:
            max_step = session.train_round(session.forget, max_loss, optimizer, stage="max (forget)",
                                           batch_size=config.batch_size, step=max_step, total=max_total)
        # 2. min round: stay with the teacher and the labels on D_r
        min_step = session.train_round(session.retain, min_loss, optimizer, stage="min (retain)",
                                       batch_size=config.batch_size, augment=True, limit=limit, step=min_step,
                                       total=min_total)
    return session.finish()
