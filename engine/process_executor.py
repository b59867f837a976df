"""Jobs in a worker process of their own, on this machine: the app server's alternative to running them in a
thread beside the pages (`UNLEARNING_LAB_WORKER=process`).

Why: in a thread, a training loop's Python work (one step per batch, progress, the metrics' loops) takes the
server's GIL turns from the sessions' scripts, so every page answers late while a run goes on. In a process of
its own the pages keep the server's interpreter to themselves and the job keeps its CPUs.

One long-lived worker (spawned on the first job, so engine imports and dataset caches are paid once), one job at
a time — the app's queue is serial anyway. `run_remote` has the same contract as the other executors': progress
snapshots reach ``on_progress`` (forwarded every `POLL_S`), ``should_stop`` turning true sets a stop flag the job
polls (it ends with `RunCancelled`), and a job that has not stopped `grace_s` after that is ended by stopping the
worker (a fresh one starts for the next job). A worker that dies (killed, out of memory) fails its job with a
clear message and is replaced. Torch in the worker uses the job's ``cpus`` threads, as a Ray task does, so with
the same thread count the records are the same as in-process.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import threading
import time
import types
from typing import Any, Iterator, Optional, Sequence

from engine.executor import Job, JobFailed, JobResult, _execute, _Tracker, _value_or_raise
from engine.progress import ProgressCallback, RunCancelled, StopCheck

POLL_S = 0.2
_MAIN_LOCK = threading.Lock()


def _spawn_without_main(process) -> None:
    """Start a spawned ``process`` as if ``__main__`` were bare. Spawn re-runs the parent's main script in the child
    (``__mp_main__``); under Streamlit that is the app's page script (Streamlit makes it ``__main__``), under an
    AppTest a temporary script, neither of which may run in a worker. The worker's target lives in this module,
    so the child needs nothing from ``__main__``."""
    with _MAIN_LOCK:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            process.start()
        finally:
            if main is not None:
                sys.modules["__main__"] = main


def _worker_main(requests, replies, stop, niceness: int = 0) -> None:
    """The worker's loop: run each (function, args, cpus) it is sent; send back snapshots, then the outcome.
    ``niceness`` > 0 lowers the whole worker's CPU priority first (its torch threads inherit it)."""
    if niceness > 0:
        try:
            os.nice(niceness)
        except (AttributeError, OSError):   # not permitted / not POSIX: run at normal priority
            pass

    def report(snapshot) -> None:
        replies.put(("progress", snapshot))

    while True:
        message = requests.get()
        if message is None:
            return
        function, args, cpus = message
        stop.clear()
        outcome = _execute(function, args, cpus, report, stop.is_set)
        try:
            replies.put(("done", outcome))
        except Exception as error:  # noqa: BLE001 — an unpicklable value must not kill the worker silently
            replies.put(("done", {"value": None, "error": f"{type(error).__name__}: {error}",
                                  "error_type": type(error).__name__, "seconds": outcome["seconds"]}))


class ProcessExecutor:
    """Runs jobs one at a time in a long-lived worker process (``multiprocessing``, spawn start method)."""

    name = "process"

    def __init__(self, *, grace_s: float = 10.0, niceness: int = 0):
        self.grace_s = grace_s
        self.niceness = niceness         # the worker's CPU priority below its parent's (0: the same)
        self._context = multiprocessing.get_context("spawn")
        self._process = None
        self._lock = threading.Lock()            # one job at a time through the one worker

    # ------------------------------------------------------------------ the worker
    def start(self):
        if self._process is None or not self._process.is_alive():
            self._requests, self._replies = self._context.Queue(), self._context.Queue()
            self._stop = self._context.Event()
            self._process = self._context.Process(target=_worker_main, name="unlearning-lab-worker",
                                                  args=(self._requests, self._replies, self._stop, self.niceness),
                                                  daemon=True)
            _spawn_without_main(self._process)
        return self._process

    @property
    def pid(self) -> Optional[int]:
        return self._process.pid if self._process is not None and self._process.is_alive() else None

    def _end_worker(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)

    # ------------------------------------------------------------------ running jobs
    def run_remote(self, job: Job, on_progress: Optional[ProgressCallback] = None,
                   should_stop: Optional[StopCheck] = None) -> Any:
        """Run ``job`` in the worker with live progress and Cancel; its value, or `RunCancelled` / `JobFailed`."""
        with self._lock:
            process = self.start()
            self._requests.put((job.function, job.args, job.cpus))
            stop_asked = None
            try:
                while True:
                    try:
                        kind, payload = self._replies.get(timeout=POLL_S)
                    except queue.Empty:
                        if not process.is_alive():
                            self._process = None
                            raise JobFailed(f"job {job.describe()} failed: the worker process ended "
                                            f"(exit code {process.exitcode}) before the job finished") from None
                        if stop_asked is None and should_stop is not None and should_stop():
                            stop_asked = time.perf_counter()
                            self._stop.set()
                        if stop_asked is not None and time.perf_counter() - stop_asked > self.grace_s:
                            self._end_worker()
                            raise RunCancelled("cancelled") from None
                        continue
                    if kind == "progress":
                        if on_progress is not None:
                            on_progress(payload)
                        if stop_asked is None and should_stop is not None and should_stop():
                            stop_asked = time.perf_counter()
                            self._stop.set()
                        continue
                    return _value_or_raise(job, payload)
            except (JobFailed, RunCancelled):
                raise
            except BaseException:
                self._end_worker()           # the caller itself was interrupted mid-job: leave no job running
                raise

    def run(self, jobs: Sequence[Job], *, on_progress: Optional[ProgressCallback] = None,
            should_stop: Optional[StopCheck] = None) -> Iterator[JobResult]:
        tracker = _Tracker(len(jobs), on_progress)
        for job in jobs:
            if should_stop is not None and should_stop():
                raise RunCancelled("cancelled")
            start = time.perf_counter()
            try:
                value = self.run_remote(job, should_stop=should_stop)
                result = JobResult(job, value, None, None, time.perf_counter() - start)
            except JobFailed as error:
                result = JobResult(job, None, str(error), "JobFailed", time.perf_counter() - start)
            tracker.finished(result)
            yield result

    def close(self) -> None:
        with self._lock:
            if self._process is not None and self._process.is_alive():
                self._requests.put(None)
                self._process.join(5)
            self._end_worker()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
