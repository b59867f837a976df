"""How long a queued job will wait: the expected durations of the jobs ahead of it, from what finished here.

A job's expected duration is the mean of the last finished jobs of its kind in this process (their whole job:
metrics and insights for an unlearning run); before any has finished, the estimate below is used. The running
job counts with what is left of its expected duration (at least a few seconds: it may overrun).
"""
from __future__ import annotations

from typing import Optional

from app import settings
from app.jobs import manager

# Seconds per job before one of its kind has finished in this process, measured on the 2-core CPU with nothing
# else running. Real settings (scripts.bench_app, 7 December 2026, 8-epoch bf16 checkpoints, one-class defaults of
# that day): a one-class WSS-CL job's metrics 8-9 s after Start, its insights after that; a background Retrain done
# 32-35 s after the run's metrics (21-22 s of training). Fast mode (docs/hardening.md, load test of 2 December 2026): 13-18 s per job with 4
# sessions, 21-32 s with 8 (the browsers share the cores).
ESTIMATE_S = {"unlearn": 25.0, "reference": 20.0, "audit": 30.0} if settings.FAST else \
    {"unlearn": 25.0, "reference": 30.0, "audit": 90.0}     # audit: 7 more WSS-CL runs of ≈ 10 s with φ
RECENT = 8                      # finished jobs of a kind averaged
LONG_QUEUE_S = 120.0            # from this wait on, the page points to the shared results


def expected_seconds(view: Optional[list] = None) -> dict[str, float]:
    """kind → expected seconds of one job, measured here when possible."""
    view = manager().queue_view() if view is None else view
    taken: dict[str, list[float]] = {}
    for _, kind, status, seconds, _ in view:
        if status == "finished":
            taken.setdefault(kind, []).append(seconds)
    return {kind: (sum(taken[kind][-RECENT:]) / len(taken[kind][-RECENT:]) if taken.get(kind) else default)
            for kind, default in ESTIMATE_S.items()}


def wait_seconds(job_id: str, view: Optional[list] = None) -> Optional[float]:
    """Seconds until ``job_id`` starts: what is left of the running job plus the jobs ahead of it; None when it is
    not waiting. 0 while it runs."""
    view = manager().queue_view() if view is None else view
    mine = next((row for row in view if row[0] == job_id), None)
    if mine is None or mine[4] is None:
        return None
    if mine[4] == 0:
        return 0.0
    expected = expected_seconds(view)
    total = 0.0
    for _, kind, status, seconds, position in view:
        if position == 0:
            total += max(5.0, expected.get(kind, 60.0) - seconds)
        elif position is not None and position < mine[4]:
            total += expected.get(kind, 60.0)
    return total


def queue_length() -> tuple[int, float]:
    """(jobs waiting, seconds until a job queued now would start)."""
    view = manager().queue_view()
    expected = expected_seconds(view)
    waiting = [row for row in view if row[4] is not None and row[4] > 0]
    running = [row for row in view if row[4] == 0]
    total = sum(expected.get(k, 60.0) for _, k, _, _, _ in waiting) + sum(
        max(5.0, expected.get(k, 60.0) - s) for _, k, _, s, _ in running)
    return len(waiting), total
