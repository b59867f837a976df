"""Background run manager: one worker thread per device, a fair queue, a cancel flag, progress snapshots.

The worker makes no `st.*` calls. Pages submit jobs and poll `snapshot()` from an
`@st.fragment(run_every=...)`; everything a page reads is a plain dict copied under the lock, so a
rerun or a page switch never touches a running computation. The manager is a module-level singleton
(`manager()`), shared by every session of the process; each job records the session that owns it.

A job's parameters are a frozen value (`engine.RunRequest`, `engine.ReferenceRequest`; no callables), shown
as they are in snapshots. A job's work is a callable `work(job, report, should_stop)`; `report(stage, step, total, **metrics)`
updates the snapshot, `should_stop()` turns True once Cancel was pressed (the engine checks it between
batches and raises `RunCancelled`); it returns `engine.SHUTDOWN` instead when the process is ending, so the run is
recorded "interrupted", not "cancelled".

Fairness: the next job comes from the owner served least recently (round-robin over sessions, first come first
served within one), so one session clicking Start many times does not push everybody else back; and a session
holds at most `MAX_WAITING` waiting runs (a further submit raises `QueueFull`, nothing is queued).
"""
from __future__ import annotations

import atexit
import itertools
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from engine import SHUTDOWN

TERMINAL = ("finished", "cancelled", "failed", "interrupted")


class QueueFull(ValueError):
    """A session already has its share of waiting runs; the message says so in words for the page."""


@dataclass
class Job:
    id: str
    owner: str                      # the session that submitted it
    kind: str                       # "unlearn", "reference" (a background Retrain) or "audit" (a deep audit)
    title: str                      # e.g. "WSS-CL · class Coat"
    params: Any                     # what the work function needs: engine.RunRequest / ReferenceRequest
    run_id: Optional[str] = None    # the run directory it writes, set once its metrics are on disk
    status: str = "queued"          # queued → running → finished | cancelled | failed | interrupted
    stage: str = ""
    step: int = 0
    total: int = 0
    metrics: dict = field(default_factory=dict)
    history: list = field(default_factory=list)   # (elapsed seconds, stage, metrics) samples for the loss plot
    created: float = field(default_factory=time.time)
    started: Optional[float] = None
    ended: Optional[float] = None
    stage_started: Optional[float] = None
    stage_history: list = field(default_factory=list)   # [(stage, seconds)] of finished stages
    error: Optional[str] = None
    result: Optional[dict] = None   # what the work function returned (e.g. {"run_id": ...})
    cancel_event: threading.Event = field(default_factory=threading.Event, repr=False)
    watchers: set = field(default_factory=set)   # other sessions that asked for the same run and joined this one
    stop_reason: Optional[str] = None   # None; "cancel" (the user) or engine.SHUTDOWN (the process is ending)
    # called with "cancelled" / "interrupted" when the job ends without its work having run (Cancel while
    # queued, shutdown), so whoever wrote a "queued" record for it can say how it ended
    not_started: Optional[Callable[[str], None]] = field(default=None, repr=False)

    def should_stop(self):
        return self.stop_reason

    def elapsed(self, now: Optional[float] = None) -> float:
        if self.started is None:
            return 0.0
        return (self.ended or now or time.time()) - self.started

    def eta(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds left in the current stage, extrapolated from its progress so far."""
        if self.status != "running" or not self.total or not self.step or self.stage_started is None:
            return None
        spent = (now or time.time()) - self.stage_started
        fraction = min(1.0, self.step / self.total)
        return spent / fraction * (1.0 - fraction) if fraction > 0 else None


Work = Callable[[Job, Callable[..., None], Callable[[], bool]], Optional[dict]]


class JobManager:
    """Runs one job at a time per device, round-robin over owners; the rest wait with a visible position."""

    HISTORY_LIMIT = 600
    ENDED_LIMIT = 200               # ended jobs kept in memory (their runs stay on disk)
    MAX_WAITING = 3                 # waiting runs per session (the running one not counted)
    LIMITED_KINDS = ("unlearn", "audit")   # a background Retrain is queued by the app itself, never refused

    def __init__(self, device_label: str = "default"):
        self.device_label = device_label
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._jobs: dict[str, Job] = {}
        self._queue: list[str] = []
        self._works: dict[str, Work] = {}
        self._running: Optional[str] = None
        self._ids = itertools.count(1)
        self._turns = itertools.count(1)
        self._served: dict[str, int] = {}   # owner → turn number of their last start (never served: 0)
        self._thread: Optional[threading.Thread] = None
        self.listeners: list[Callable[[Job], None]] = []   # called (in the worker) when a job ends
        self._closing = False

    # ------------------------------------------------------------------ submitting and cancelling
    def submit(self, owner: str, kind: str, title: str, params: Any, work: Work,
               not_started: Optional[Callable[[str], None]] = None) -> Job:
        """Queue a job. QueueFull (nothing queued) when ``owner`` already has `MAX_WAITING` waiting runs."""
        with self._lock:
            if self._closing:
                raise QueueFull("Not started: the server is shutting down.")
            waiting = sum(1 for i in self._queue if self._jobs[i].owner == owner and self._jobs[i].kind == kind)
            if kind in self.LIMITED_KINDS and waiting >= self.MAX_WAITING:
                raise QueueFull(f"Not started: you already have {waiting} runs waiting (at most {self.MAX_WAITING} "
                                f"per session, so every visitor gets a turn). Wait for one to start, or cancel one.")
            job = Job(id=f"{time.strftime('%H%M%S')}-{next(self._ids)}", owner=owner, kind=kind, title=title,
                      params=dict(params) if isinstance(params, dict) else params, not_started=not_started)
            self._jobs[job.id] = job
            self._works[job.id] = work
            ended = [i for i, j in self._jobs.items() if j.status in TERMINAL]
            for old in ended[: max(0, len(ended) - self.ENDED_LIMIT)]:   # bounded memory: oldest ended first
                del self._jobs[old]
            self._queue.append(job.id)
            self._ensure_worker()
            self._wake.notify_all()
            return job

    def join(self, job_id: str, owner: str) -> Optional[Job]:
        """Let ``owner`` follow a queued or running job as its own (an identical request: app/sharing.py); None
        once it has ended or is being cancelled."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status in TERMINAL or job.cancel_event.is_set():
                return None
            if owner != job.owner:
                job.watchers.add(owner)
            return job

    def cancel(self, job_id: str) -> bool:
        """Ask a job to stop. A queued job is dropped at once; a running one stops at its next batch."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status in TERMINAL:
                return False
            job.cancel_event.set()
            job.stop_reason = job.stop_reason or "cancel"
            dropped = job.status == "queued"
            if dropped:
                self._queue.remove(job_id)
                job.status, job.ended = "cancelled", time.time()
        if dropped:
            self._not_started(job, "cancelled")
        return True

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop everything as "interrupted" (not a user's cancel) and let the worker end (at interpreter exit —
        atexit, which Streamlit's SIGTERM handler reaches — a daemon thread still inside torch when the process
        dies aborts it). Waiting jobs end "interrupted" without starting; their records say "not started"."""
        with self._lock:
            self._closing = True
            dropped = [self._jobs[i] for i in self._queue]
            for job in dropped:
                job.status, job.ended, job.stop_reason = "interrupted", time.time(), SHUTDOWN
            self._queue.clear()
            if self._running:
                self._jobs[self._running].stop_reason = SHUTDOWN
                self._jobs[self._running].cancel_event.set()
            thread = self._thread
            self._wake.notify_all()
        for job in dropped:
            self._not_started(job, "interrupted")
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @staticmethod
    def _not_started(job: Job, status: str) -> None:
        if job.not_started is not None:
            try:
                job.not_started(status)
            except Exception:  # noqa: BLE001 — a record that cannot be written must not stop the others
                pass

    # ------------------------------------------------------------------ reading (plain copies)
    def position(self, job_id: str) -> Optional[int]:
        """0 while running, n ≥ 1 for the n-th place in the waiting line (in the order jobs will start),
        None once ended/unknown."""
        with self._lock:
            return self._position(job_id)

    def _position(self, job_id: str) -> Optional[int]:
        if self._running == job_id:
            return 0
        order = self._order()
        return order.index(job_id) + 1 if job_id in order else None

    def _order(self) -> list[str]:
        """The waiting jobs in the order they will start if nobody submits more (the scheduler played forward)."""
        queue, served, order = list(self._queue), dict(self._served), []
        while queue:
            job_id = self._pick(queue, served)
            queue.remove(job_id)
            served[self._jobs[job_id].owner] = 10 ** 12 + len(order)   # after every real turn, in playing order
            order.append(job_id)
        return order

    def _pick(self, queue: list[str], served: dict[str, int]) -> str:
        """The first waiting job of the owner served least recently (ties: the earlier submission)."""
        return min(queue, key=lambda i: (served.get(self._jobs[i].owner, 0), queue.index(i)))

    def snapshot(self, job_id: str) -> Optional[dict]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            now = time.time()
            position = self._position(job_id)
            return {"id": job.id, "owner": job.owner, "kind": job.kind, "title": job.title, "status": job.status,
                    "stage": job.stage, "step": job.step, "total": job.total, "metrics": dict(job.metrics),
                    "history": list(job.history), "elapsed": job.elapsed(now), "eta": job.eta(now),
                    "position": position, "error": job.error, "result": dict(job.result or {}),
                    "params": dict(job.params) if isinstance(job.params, dict) else job.params,
                    "run_id": job.run_id, "stages": list(job.stage_history),
                    "cancel_requested": job.cancel_event.is_set()}

    def jobs(self, owner: Optional[str] = None) -> list[dict]:
        with self._lock:
            ids = [j.id for j in self._jobs.values() if owner is None or j.owner == owner or owner in j.watchers]
        return [s for s in (self.snapshot(i) for i in ids) if s is not None]

    def fingerprint(self, owner: Optional[str] = None) -> tuple:
        """What a page shows of ``owner``'s jobs, as a cheap comparable value (no copies of histories): a poll
        that finds it unchanged has nothing new to draw."""
        with self._lock:
            return tuple((j.id, j.status, j.stage, j.step, j.total, j.run_id, len(j.history),
                          self._queue.index(j.id) + 1 if j.id in self._queue else 0, j.cancel_event.is_set())
                         for j in self._jobs.values() if owner is None or j.owner == owner or owner in j.watchers)

    def queue_view(self) -> list[tuple]:
        """(id, kind, status, seconds running or taken, position) of every job, light: for queue ETAs."""
        with self._lock:
            now, order = time.time(), self._order()      # the fair scheduler's real order, as positions show it
            return [(j.id, j.kind, j.status, j.elapsed(now),
                     0 if self._running == j.id else (order.index(j.id) + 1 if j.id in order else None))
                    for j in self._jobs.values()]

    def busy(self) -> dict:
        with self._lock:
            return {"running": self._running, "waiting": len(self._queue)}

    def wait(self, job_id: str, timeout: float = 60.0) -> dict:
        """Block until the job ends (tests and scripts only; pages poll instead)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            snap = self.snapshot(job_id)
            if snap is None or snap["status"] in TERMINAL:
                return snap
            time.sleep(0.05)
        raise TimeoutError(f"job {job_id} still {self.snapshot(job_id)['status']} after {timeout} s")

    # ------------------------------------------------------------------ the worker
    def _ensure_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name=f"unlearning-worker-{self.device_label}",
                                            daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        lower_priority()
        while True:
            with self._lock:
                while not self._queue:
                    if self._closing or not self._wake.wait(timeout=300):
                        self._thread = None          # idle for long: let the thread end; submit restarts it
                        return
                job_id = self._pick(self._queue, self._served)
                self._queue.remove(job_id)
                job = self._jobs[job_id]
                work = self._works.pop(job_id)
                self._running = job_id
                self._served[job.owner] = next(self._turns)
                job.status, job.started = "running", time.time()
                job.stage_started = job.started
            try:
                result = work(job, lambda *a, **k: self._report(job, *a, **k), job.should_stop)
                status, error = "finished", None
            except Exception as exc:  # noqa: BLE001 — a failed run must leave the app working
                result = None
                cancelled = type(exc).__name__ == "RunCancelled" or job.cancel_event.is_set()
                status = ("interrupted" if job.stop_reason == SHUTDOWN else "cancelled") if cancelled else "failed"
                error = None if cancelled else f"{type(exc).__name__}: {exc}"
                if not cancelled:
                    job.metrics["traceback"] = traceback.format_exc(limit=6)
            with self._lock:
                job.status, job.error, job.result, job.ended = status, error, result, time.time()
                self._running = None
            for listener in list(self.listeners):
                try:
                    listener(self.snapshot(job.id))
                except Exception:  # noqa: BLE001
                    pass

    def _report(self, job: Job, stage: str, step: int = 0, total: int = 0, **metrics) -> None:
        now = time.time()
        with self._lock:
            if stage != job.stage:
                if job.stage:
                    job.stage_history.append((job.stage, now - (job.stage_started or now)))
                job.stage, job.stage_started = stage, now
            job.step, job.total = int(step), int(total)
            job.metrics = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
            numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and k != "epoch"}
            if numeric:
                job.history.append((round(job.elapsed(now), 2), stage, numeric, metrics.get("epoch")))
                if len(job.history) > self.HISTORY_LIMIT:
                    del job.history[::2]   # thin evenly, keep the shape of the curve


def worker_niceness(default: int = 10) -> int:
    """How far below the pages heavy work runs: $UNLEARNING_LAB_WORKER_NICE, else ``default``."""
    return int(os.environ.get("UNLEARNING_LAB_WORKER_NICE", default))


def lower_priority(niceness: int = 10) -> None:
    """Run heavy work at a lower CPU priority than the threads serving pages (Linux: per thread; the torch
    worker threads this thread starts inherit it), so clicks stay responsive while a run uses every core.
    Costs the run nothing on an otherwise idle machine — but on a host shared with other busy processes the
    run gets almost no CPU (measured: 2 s of CPU in 5 min at load 15 on 2 cores, docs/hardening.md), so
    $UNLEARNING_LAB_WORKER_NICE overrides it (0: no lowering)."""
    niceness = worker_niceness(niceness)
    if niceness <= 0:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError):   # not Linux, or not permitted: run at normal priority
        pass


_MANAGER: Optional[JobManager] = None
_MANAGER_LOCK = threading.Lock()


def manager() -> JobManager:
    """The process-wide manager (survives page reruns and is shared by every session)."""
    global _MANAGER
    with _MANAGER_LOCK:
        if _MANAGER is None:
            _MANAGER = JobManager()
            atexit.register(_MANAGER.shutdown)
        return _MANAGER
