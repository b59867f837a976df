"""The run record: one typed, versioned value for what ``run.json`` holds, written by one function.

The CLI (``--save-run``), the bench and the app all write through `write_record`; the app adds only its own
two fields (``owner``, ``job``). A record's status changes through its methods, never by hand:

    queued ──start()──▶ running             (the app writes "queued" when a job joins the waiting line)
       └──interrupt(started=False)──▶ interrupted, "not started"   (the process ended first)
    running ──finish()──▶ finished          (metrics saved; insights may follow: "computing" → "ready")
       ├──cancel()──▶ cancelled
       ├──fail(error)──▶ failed
       └──interrupt()──▶ interrupted      (a normal shutdown stopped it)
    running / queued, found with its process gone ──▶ interrupted   (decided by `settle`, the one liveness rule;
                                                    a queued one also says "not started")

While a record is live it carries the writer's pid and a per-process token (a restarted server in a
container often gets the same pid again); both are dropped once nothing more will be written, so a
finished run that is copied or shipped holds no process details.
"""
from __future__ import annotations

import dataclasses
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from engine.checkpoints import now
from engine.splits import ForgetSpec

VERSION = 2                  # 1: the untyped dict of earlier releases (read, converted on the next write)
RECORD_NAME = "run.json"
STATUSES = ("queued", "running", "finished", "cancelled", "failed", "interrupted")
NOT_STARTED = "not started: the server stopped before this run's turn came"
PROCESS_TOKEN = uuid.uuid4().hex      # tells this process's records from a dead one's with the same pid
_VIEW_KEYS = ("path", "id", "spec", "status_text")   # added by readers for pages (never stored)


@dataclass
class RunRecord:
    """What a run directory's ``run.json`` says about the run."""

    method: str = ""
    label: str = ""
    dataset: str = ""
    forget: Optional[ForgetSpec] = None
    config: dict = field(default_factory=dict)
    seed: int = 0
    status: str = "running"
    kind: str = "unlearned"
    created: str = field(default_factory=now)
    spec_text: str = ""                  # the forget set in words, with the dataset's class names
    device: str = ""
    fast: bool = False                   # the app's fast mode: tiny settings, not a real result
    split_seed: int = 0
    split: Optional[dict] = None         # sizes of retain / forget / validation / test
    metrics: Optional[dict] = None       # Evaluation.to_dict() of the unlearned model
    original_metrics: Optional[dict] = None
    reference: Optional[dict] = None     # Retrain's UA/RA/TA/MIA under the same split, when known
    reference_metrics: Optional[dict] = None
    reference_source: str = ""           # "precomputed" (assets/) or "computed" (in the background)
    avg_gap: Optional[float] = None
    seconds: Optional[float] = None      # RTE: wall-clock of the unlearning
    history: list = field(default_factory=list)
    insights: str = "none"               # none → computing → ready | cancelled | failed | interrupted
    insights_error: Optional[str] = None
    error: Optional[str] = None
    original: Optional[str] = None       # an uploaded original model's path; None = the shipped one
    checkpoint: Optional[str] = None
    versions: dict = field(default_factory=dict)
    identity: Optional[str] = None       # engine.identity: runs with equal identities compute equal records
    owner: Optional[str] = None          # the app's session that started it
    job: Optional[str] = None            # the app's job id
    pid: Optional[int] = None            # while live only (see `settle`)
    process: Optional[str] = None
    extra: dict = field(default_factory=dict)   # keys this version does not know, kept as they were

    # ------------------------------------------------------------------ status transitions
    def queue(self) -> "RunRecord":
        """Waiting for its turn; carries the process, so a queued run of a dead process settles as not started."""
        self.status, self.pid, self.process = "queued", os.getpid(), PROCESS_TOKEN
        return self

    def start(self) -> "RunRecord":
        self.status, self.pid, self.process = "running", os.getpid(), PROCESS_TOKEN
        return self

    def finish(self, **figures) -> "RunRecord":
        """Metrics saved: ``figures`` are the outcome's fields (metrics, reference, avg_gap, seconds, ...)."""
        self._update(figures)
        self.status = "finished"
        self._release()
        return self

    def cancel(self) -> "RunRecord":
        self.status, self.error = "cancelled", None
        self._release()
        return self

    def fail(self, error: str) -> "RunRecord":
        self.status, self.error = "failed", error
        self._release()
        return self

    def interrupt(self, started: bool = True) -> "RunRecord":
        """Stopped by the process ending (a normal shutdown), not by a user."""
        self.status, self.error = "interrupted", None if started else NOT_STARTED
        if self.insights == "computing":
            self.insights = "interrupted"
        self._release()
        return self

    def insights_started(self) -> "RunRecord":
        self.insights, self.pid, self.process = "computing", os.getpid(), PROCESS_TOKEN
        return self

    def insights_ended(self, status: str, error: Optional[str] = None) -> "RunRecord":
        self.insights, self.insights_error = status, error
        self._release()
        return self

    def _release(self) -> None:
        if self.status not in ("running", "queued") and self.insights != "computing":
            self.pid = self.process = None

    def _update(self, values: dict) -> None:
        for key, value in values.items():
            setattr(self, key, value)

    # ------------------------------------------------------------------ liveness (the one rule)
    def live(self) -> bool:
        """Written by this process, or by another one still alive (e.g. a CLI run beside the app)."""
        if self.pid is None:
            return False
        if self.pid == os.getpid():
            return self.process == PROCESS_TOKEN
        return _pid_alive(self.pid)

    def settle(self) -> "RunRecord":
        """What a reader should believe: a run or insights left in progress by a dead process never arrive."""
        if self.status == "running" and not self.live():
            self.status = "interrupted"
        if self.status == "queued" and not self.live():
            self.status, self.error = "interrupted", NOT_STARTED
        if self.insights == "computing" and not self.live():
            self.insights = "interrupted"
        return self

    # ------------------------------------------------------------------ JSON edge
    def to_json(self) -> dict:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        values["forget"] = self.forget.to_dict() if self.forget is not None else None
        for key in ("pid", "process"):
            if values[key] is None:
                del values[key]
        return {"version": VERSION, **self.extra, **values}

    @classmethod
    def from_json(cls, values: dict) -> "RunRecord":
        """Any stored version. Version 1 kept the forget spec twice ("spec" and "forget"), Avg. Gap twice (also in
        "metrics"), the page's "id", and the writer's pid / process token after the run had ended."""
        values = dict(values)
        if values.pop("version", 1) == 1 and isinstance(values.get("metrics"), dict) \
                and values["metrics"].get("avg_gap") == values.get("avg_gap"):
            values["metrics"] = {k: v for k, v in values["metrics"].items() if k != "avg_gap"}
        values.setdefault("created", "")
        forget = values.pop("forget", None) or values.get("spec")
        for key in _VIEW_KEYS:
            values.pop(key, None)
        known = {f.name for f in dataclasses.fields(cls)} - {"forget", "extra"}
        record = cls(**{k: v for k, v in values.items() if k in known},
                     extra={k: v for k, v in values.items() if k not in known and k != "extra"})
        record.forget = ForgetSpec.from_dict(forget) if isinstance(forget, dict) else forget
        record._release()
        return record

    def status_text(self) -> str:
        """The status in words for listings: "interrupted (not started)" for a queued run that never ran."""
        return f"{self.status} (not started)" if self.status == "interrupted" and self.error == NOT_STARTED \
            else self.status

    def view(self, path: Path | str, run_id: Optional[str] = None) -> dict:
        """The JSON form with where it lives, for pages and listings ("spec": the older name of "forget")."""
        values = self.to_json()
        return {**values, "spec": values["forget"], "path": str(path), "id": run_id or str(path),
                "status_text": self.status_text()}


def write_record(run_dir: str | Path, record: RunRecord) -> Path:
    """The one writer of ``run.json`` (atomic: a reader never sees half a record)."""
    from engine.checkpoints import write_json_atomic

    return write_json_atomic(Path(run_dir) / RECORD_NAME, record.to_json(), overwrite=True)


def read_record(run_dir: str | Path) -> RunRecord:
    """The record of ``run_dir``, as stored (not settled). CheckpointError when unreadable."""
    import json

    from engine.checkpoints import CheckpointError

    path = Path(run_dir) / RECORD_NAME
    try:
        return RunRecord.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as error:
        raise CheckpointError(f"{path} is not a readable run record ({error})") from None


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True
