"""Retrain — exact unlearning: re-initialise the model and train it from scratch on D_r with the
original recipe (engine.training.RECIPES). The gold standard every other method is measured against
(Avg. Gap), and the slowest.

Notation (docs/method.md §3): `session.split.retain` = D_r; the recipe is the one the original θ_o was trained
with; `config.epochs` may shorten it (then it is no longer exact).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from engine.methods.common import MethodConfig, Session, option, reset_weights
from engine.training import RECIPES, train_model


@dataclass(frozen=True)
class RetrainConfig(MethodConfig):
    # One recipe for every forget setting.
    SETTINGS = {}
    # Fast mode (the app's UNLEARNING_LAB_FAST=1): caps that make a run take seconds; a smaller default stays.
    FAST = {"epochs": 1}
    epochs: int = option(RECIPES["small-cnn"].epochs, "training epochs (the original recipe's by default; fewer is "
                         "faster but not exact)",
                         min=1, max=200)


def unlearn(model, dataset, split, config: RetrainConfig | None = None, *, device, seed=0, on_progress=None,
            should_stop=None):
    config = config or RetrainConfig()
    session = Session("retrain", model, dataset, split, config, device=device, seed=seed,
                      on_progress=on_progress, should_stop=should_stop)
    recipe = dataclasses.replace(session.recipe, epochs=config.epochs)   # the original's recipe

    def record(progress):
        session.history.append({"stage": progress.stage, "step": progress.step, "total": progress.total,
                                "losses": dict(progress.metrics)})
        if on_progress is not None:
            on_progress(progress)

    # 1. fresh weights (seeded), 2. the original recipe on D_r only
    reset_weights(session.model)
    train_model(session.model, dataset, split.retain, recipe, device=session.device, seed=seed, stage="retrain",
                on_progress=record, should_stop=should_stop)
    return session.finish()
