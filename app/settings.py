"""App-wide settings read from the environment (documented in docs/app.md).

UNLEARNING_LAB_FAST=1   shrink every default so a whole run takes seconds (tests, CI, demos on slow machines):
                        1 epoch, half the retain set, a 1-epoch background Retrain, small insight samples.
UNLEARNING_LAB_RUNS     where runs are kept (default ./runs).
UNLEARNING_LAB_DATASET  the dataset the app opens (default fashion-mini).
"""
from __future__ import annotations

import os

FAST = os.environ.get("UNLEARNING_LAB_FAST", "").strip().lower() in ("1", "true", "yes", "on")
DATASET = os.environ.get("UNLEARNING_LAB_DATASET", "fashion-mini")
POLL_SECONDS = 1.0          # how often a running job's panel refreshes (the rest of the page stays idle); each
                            # refresh costs the run CPU on a 2-core machine, so not faster

# Fast mode's caps on each method's hyperparameters sit on its config class (FAST, engine/methods/*.py).
FAST_RETRAIN_EPOCHS = 1     # the background Retrain in fast mode (the real recipe otherwise)
# engine.InsightsConfig overrides: fewer UMAP points / attributions in fast mode
INSIGHT_OPTIONS = {"max_points": 600, "attribution_count": 4, "attribution_steps": 8, "max_test": 500} if FAST else {}


def class_names() -> tuple[str, ...]:
    import engine

    return engine.load_dataset(DATASET).classes
