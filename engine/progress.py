"""One progress type and one cancellation mechanism for every long computation in the engine.

The app turns `Progress` into a progress bar, the CLI into a tqdm line, tests into a list. No print.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional


@dataclass(frozen=True)
class Progress:
    """A snapshot: `step` of `total` done in `stage` (e.g. "stage 2 · forget round"), with live metrics."""

    stage: str
    step: int
    total: int
    metrics: dict = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total) if self.total else 0.0


ProgressCallback = Callable[[Progress], None]
StopCheck = Callable[[], bool]
# What a StopCheck returns (truthy, like True) when the process itself is ending rather than a user asking:
# a run stopped so is recorded "interrupted", not "cancelled" (a user's Cancel stays "cancelled").
SHUTDOWN = "shutdown"


class RunCancelled(Exception):
    """Raised inside a computation when its `should_stop` check returns True."""


class RunDiverged(RuntimeError):
    """Raised when a loss becomes NaN or infinite: the run stops itself instead of writing garbage."""


class Reporter:
    """Bundles the optional callback and stop check, so loops call `reporter.step(...)` once per batch."""

    def __init__(self, on_progress: Optional[ProgressCallback] = None, should_stop: Optional[StopCheck] = None):
        self.on_progress = on_progress
        self.should_stop = should_stop

    def check(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise RunCancelled("cancelled")

    def report(self, stage: str, step: int, total: int, **metrics: float) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(stage, step, total, dict(metrics)))

    def step(self, stage: str, step: int, total: int, **metrics: float) -> None:
        """Report, then honour a cancel request (called between batches)."""
        self.report(stage, step, total, **metrics)
        self.check()
