"""App-wide settings read from the environment (documented in docs/app.md).

UNLEARNING_LAB_FAST=1   shrink every default so a whole run takes seconds (tests, CI, demos on slow machines):
                        1 epoch, half the retain set, a 1-epoch background Retrain, small insight samples.
UNLEARNING_LAB_RUNS     where runs are kept (default ./runs).
UNLEARNING_LAB_DATASET  the dataset the app opens (default fashion-mini).
UNLEARNING_LAB_RAY_ADDRESS  run every job (unlearning, insights, background Retrain) on this Ray cluster
                        ("HEAD:6379"; the cluster must see the same run folder); unset: in this process, and Ray
                        is never imported. UNLEARNING_LAB_RAY_CPUS (default 1) and UNLEARNING_LAB_RAY_GPUS (a
                        fraction of one GPU, default 0; e.g. 0.25) are what each job asks the cluster for.
UNLEARNING_LAB_WORKER   where jobs run when no cluster is set: "thread" (default; a thread of the server) or
                        "process" (one long-lived worker process, engine.process_executor: the pages keep the
                        server's interpreter to themselves while a run trains — the Space's setting, docs/hardening.md).
"""
from __future__ import annotations

import os

FAST = os.environ.get("UNLEARNING_LAB_FAST", "").strip().lower() in ("1", "true", "yes", "on")
DATASET = os.environ.get("UNLEARNING_LAB_DATASET", "fashion-mini")


def _number(name: str, default: float, least: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if not value >= least:
        raise ValueError(f"{name} must be at least {least:g}, got {raw!r}")
    return value


RAY_ADDRESS = os.environ.get("UNLEARNING_LAB_RAY_ADDRESS", "").strip()
RAY_CPUS = _number("UNLEARNING_LAB_RAY_CPUS", 1, 0.01)   # a job asking more than any node has waits forever (Ray
RAY_GPUS = _number("UNLEARNING_LAB_RAY_GPUS", 0, 0)      # calls it "infeasible"), hence the small defaults
WORKER = os.environ.get("UNLEARNING_LAB_WORKER", "thread").strip().lower() or "thread"
if WORKER not in ("thread", "process"):
    raise ValueError(f"UNLEARNING_LAB_WORKER must be thread or process, got {WORKER!r}")
POLL_SECONDS = 1.0          # how often a running job's panel refreshes (the rest of the page stays idle); each
                            # refresh costs the run CPU on a 2-core machine, so not faster

# Fast mode's caps on each method's hyperparameters sit on its config class (FAST, engine/methods/*.py).
FAST_RETRAIN_EPOCHS = 1     # the background Retrain in fast mode (the real recipe otherwise)
# engine.InsightsConfig overrides: fewer UMAP points / attributions in fast mode
INSIGHT_OPTIONS = {"max_points": 600, "attribution_count": 4, "attribution_steps": 8, "max_test": 500} if FAST else {}


def class_names() -> tuple[str, ...]:
    import engine

    return engine.load_dataset(DATASET).classes
