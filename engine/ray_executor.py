"""The Ray side of `engine.executor`: imported only when a caller asks for ``executor="ray"``.

A local Ray (started on demand, dashboard off, node address 127.0.0.1) or an existing cluster
(``address``, else ``RAY_ADDRESS``). Workers import the engine from this checkout: a local Ray's workers
inherit this process's PYTHONPATH, a cluster's get it through the runtime environment (the checkout at the
same path on every node), or ``ship_code=True`` uploads the checkout.

A long single job (`run_remote`) talks to the caller through a small actor, the mailbox: the job pushes
`Progress` snapshots into it and polls its stop flag between batches (a cooperative stop, which ends
with `RunCancelled` like a local run); the caller forwards the snapshots to its callback and, when its
own ``should_stop`` turns true, sets the flag — and cancels the task outright if it has not stopped
within ``grace_s`` (a job stuck outside its batch loop).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from engine.executor import Job, JobResult, _execute, _Tracker, _value_or_raise
from engine.progress import ProgressCallback, RunCancelled, StopCheck

REPO = Path(__file__).resolve().parent.parent
POLL_S = 0.2          # how often the caller looks at finished tasks, the stop check and the mailbox
STOP_POLL_S = 0.5     # how often a remote job asks the mailbox whether to stop (a round trip of ~1 ms)


class RayExecutor:
    name = "ray"

    def __init__(self, address: Optional[str] = None, num_cpus: Optional[int] = None, ship_code: bool = False,
                 grace_s: float = 10.0, object_store_bytes: int = 256 * 2**20):
        self.address, self.num_cpus, self.ship_code, self.grace_s = address, num_cpus, ship_code, grace_s
        self.object_store_bytes = object_store_bytes   # results are small dicts and weights of a few MB
        self.owns_ray = False
        self.start_seconds: Optional[float] = None
        self._remote = None

    # ----------------------------------------------------------------------------------- lifecycle
    def start(self):
        """Connect (or start a local Ray) once; a Ray this process already joined is reused."""
        import ray

        if self._remote is not None:
            return ray
        start = time.perf_counter()
        if not ray.is_initialized():
            path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
            address = self.address or os.environ.get("RAY_ADDRESS")
            if address:
                # a cluster's workers import the engine from their own checkout at the same path, or from
                # this one uploaded (ship_code)
                runtime_env: dict = {"env_vars": {"PYTHONPATH": path, "OMP_WAIT_POLICY": "PASSIVE"}}
                if self.ship_code:
                    runtime_env["working_dir"] = str(REPO)
                    runtime_env["excludes"] = [".git", ".venv", "runs", "data", "*.pyc"]
                ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
            else:
                # local workers inherit this process's environment: no runtime-env set-up on the start path
                os.environ["PYTHONPATH"] = path
                os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                ray.init(num_cpus=self.num_cpus or os.cpu_count(), include_dashboard=False,
                         _node_ip_address="127.0.0.1", log_to_driver=False,
                         object_store_memory=self.object_store_bytes)
            self.owns_ray = True
        self._remote = ray.remote(_execute)
        self.start_seconds = time.perf_counter() - start
        return ray

    def describe(self) -> str:
        """Where jobs run, e.g. "Ray cluster · 2 CPU, 1 GPU"."""
        ray = self.start()
        resources = ray.cluster_resources()
        gpus = resources.get("GPU", 0)
        return f"Ray cluster · {resources.get('CPU', 0):g} CPU" + (f", {gpus:g} GPU" if gpus else "")

    def close(self) -> None:
        if self.owns_ray:
            import ray

            ray.shutdown()
            self.owns_ray = False
        self._remote = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---------------------------------------------------------------------------------------- batches
    def run(self, jobs: Sequence[Job], *, on_progress: Optional[ProgressCallback] = None,
            should_stop: Optional[StopCheck] = None) -> Iterator[JobResult]:
        """Submit every job, yield results in completion order. Leaving early (an exception, Ctrl-C, the
        consumer closing the iterator, ``should_stop``) cancels every job still queued or running."""
        ray = self.start()
        tracker = _Tracker(len(jobs), on_progress)
        pending = {self._remote.options(num_cpus=job.cpus, num_gpus=job.gpus)
                   .remote(job.function, job.args, job.cpus): job for job in jobs}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                if should_stop is not None and should_stop():
                    raise RunCancelled("cancelled")
                for ref in ready:
                    job = pending.pop(ref)
                    result = JobResult(job, **self._outcome(ray, ref))
                    tracker.finished(result)
                    yield result
        finally:
            # force: a running task is killed at once (seen here: without it, cancelled 120 s sleeps kept
            # both CPUs past 60 s); a queued one is dropped before it starts
            for ref in pending:
                ray.cancel(ref, force=True)

    @staticmethod
    def _outcome(ray, ref) -> dict:
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as error:  # the worker died or the task was cancelled: not the job's code
            return {"value": None, "error": f"{type(error).__name__}: {error}", "error_type": type(error).__name__,
                    "seconds": 0.0}

    # -------------------------------------------------------------------------------- one long job
    def run_remote(self, job: Job, on_progress: Optional[ProgressCallback] = None,
                   should_stop: Optional[StopCheck] = None) -> Any:
        """Run one job on the cluster with live progress and Cancel; returns its value or raises
        `RunCancelled` / `engine.executor.JobFailed`, like `InlineExecutor.run_remote`."""
        ray = self.start()
        mailbox = ray.remote(num_cpus=0)(Mailbox).remote()
        ref = ray.remote(_execute_with_mailbox).options(num_cpus=job.cpus, num_gpus=job.gpus).remote(
            job.function, job.args, job.cpus, mailbox)
        stop_asked = None
        try:
            while True:
                ready, _ = ray.wait([ref], timeout=POLL_S)
                for snapshot in ray.get(mailbox.drain.remote()):
                    if on_progress is not None:
                        on_progress(snapshot)
                if ready:
                    break
                if stop_asked is None and should_stop is not None and should_stop():
                    stop_asked = time.perf_counter()
                    mailbox.request_stop.remote()
                if stop_asked is not None and time.perf_counter() - stop_asked > self.grace_s:
                    ray.cancel(ref)
                    raise RunCancelled("cancelled")
            outcome = self._outcome(ray, ref)
            if outcome["error_type"] in ("TaskCancelledError",):
                raise RunCancelled("cancelled")
            return _value_or_raise(job, outcome)
        finally:
            ray.cancel(ref)  # no-op once finished; stops it when the caller itself was interrupted
            ray.kill(mailbox)


class Mailbox:
    """Progress snapshots from a remote job to its caller, and a stop flag from the caller to the job."""

    def __init__(self):
        self.snapshots: list = []
        self.stop = False

    def push(self, snapshot) -> None:
        self.snapshots.append(snapshot)
        del self.snapshots[:-256]   # a caller that stopped draining must not grow the actor without bound

    def drain(self) -> list:
        snapshots, self.snapshots = self.snapshots, []
        return snapshots

    def request_stop(self) -> None:
        self.stop = True

    def stopped(self) -> bool:
        return self.stop


def _execute_with_mailbox(function: str, args: dict, cpus: float, mailbox) -> dict:
    """`_execute` on a worker, with callbacks that talk to the caller's mailbox actor."""
    import ray

    last = {"stop_check": 0.0, "stopped": False}

    def on_progress(snapshot) -> None:
        mailbox.push.remote(snapshot)     # fire and forget: the job never waits on its reporting

    def should_stop() -> bool:
        now = time.perf_counter()
        if not last["stopped"] and now - last["stop_check"] >= STOP_POLL_S:
            last["stop_check"] = now
            last["stopped"] = bool(ray.get(mailbox.stopped.remote()))
        return last["stopped"]

    return _execute(function, args, cpus, on_progress, should_stop)
