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

# Config overrides applied in fast mode when the method's config has a field of that name (a default already smaller
# is kept). Retain share 0.5, not less: WSS-CL's stage 1 is a deliberate overshoot that the retain repair must undo —
# measured with one epoch, class 1: 5 % of the retain set leaves validation accuracy at 38 %, 15 % at 82 %, 50 % at
# 87.8 % (UA 99.9) in 4 s; random 10 %: 72 % at 5 %, 86 % at 50 % (docs/app.md).
FAST_OVERRIDES = {
    "epochs": 1, "stage2_epochs": 1, "adversarial_epochs": 1, "finetune_epochs": 1, "forget_epochs": 1,
    "retain_epochs": 1, "max_steps": 1, "retain_subset": 512, "retain_samples": 512, "retain_fraction": 0.5,
    "retain_limit": 512, "max_retain": 512, "msteps": 1, "max_epochs": 1,
}
FAST_RETRAIN_EPOCHS = 1     # the background Retrain in fast mode (the real recipe otherwise)
# engine.InsightsConfig overrides: fewer UMAP points / attributions in fast mode
INSIGHT_OPTIONS = {"max_points": 600, "attribution_count": 4, "attribution_steps": 8, "max_test": 500} if FAST else {}


def class_names() -> tuple[str, ...]:
    import engine

    return engine.load_dataset(DATASET).classes
