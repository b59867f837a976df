"""One way to run independent jobs (a bench cell, a Retrain, a tuning trial, a population member):
in this process (`InlineExecutor`, the default: Ray is not imported, nothing is started) or on Ray
(`RayExecutor`: a local Ray started on demand, or an existing cluster by address / ``RAY_ADDRESS``).

    jobs = [Job("engine.population:train_member", {...}, key="member-0", cpus=1, gpus=0.25), ...]
    with make_executor("ray") as executor:
        for result in executor.run(jobs, on_progress=bar):      # in completion order
            log.append(result) if result.ok else report(result.job, result.error)

A job names its function as "module:function" and carries plain-value arguments, so it pickles and
travels to any worker; the function must return plain values (dicts, lists, numbers, numpy arrays).
Both executors run a job through the same `_execute`, which pins torch to the job's CPU count: a
reduction's order follows the thread count, so this is what makes a record identical whichever
executor ran it (`comparable` drops the fields that legitimately differ: times, device, host).
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import json
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from engine.progress import Progress, ProgressCallback, RunCancelled, StopCheck

# Fields of a record that say when, where and how fast it ran: everything else must match across executors.
TIMING_FIELDS = frozenset({"seconds", "train_seconds", "created", "device", "host", "executor", "versions"})


@dataclass(frozen=True)
class Job:
    """A picklable unit of work: ``function`` ("module:function") called with ``args`` (plain values)."""

    function: str
    args: dict = field(default_factory=dict)
    key: str = ""            # names the result (e.g. a bench cell); the caller's resume log is keyed by it
    cpus: float = 1.0        # torch threads inside the job, and the CPUs Ray reserves for it
    gpus: float = 0.0        # a fraction of one GPU (Ray only): 0.25 lets four small-CNN trainings share one

    def __post_init__(self):
        if ":" not in self.function:
            raise ValueError(f"Job.function must be 'module:function', got {self.function!r}")
        if not self.cpus > 0 or self.gpus < 0:
            raise ValueError(f"a job needs cpus > 0 and gpus ≥ 0, got cpus={self.cpus}, gpus={self.gpus}")

    def describe(self) -> str:
        return f"{self.key or self.function} {json.dumps(self.args, sort_keys=True, default=str)}"


@dataclass(frozen=True)
class JobResult:
    job: Job
    value: Any = None
    error: Optional[str] = None      # "Type: message" and the traceback's tail when the job raised
    error_type: Optional[str] = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class JobFailed(RuntimeError):
    """A job raised on its worker; the message holds the job's config and the remote traceback."""


def resolve(function: str) -> Callable:
    module, _, name = function.partition(":")
    return getattr(importlib.import_module(module), name)


@contextlib.contextmanager
def torch_threads(count: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, count))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _execute(function: str, args: dict, cpus: float, on_progress=None, should_stop=None) -> dict:
    """Run one job and return a plain outcome (never raises for the job's own errors, so one failure
    reaches the caller as data with its config instead of as a Ray exception type)."""
    start = time.perf_counter()
    try:
        target = resolve(function)
        extra = {}
        parameters = inspect.signature(target).parameters
        if "on_progress" in parameters:
            extra["on_progress"] = on_progress
        if "should_stop" in parameters:
            extra["should_stop"] = should_stop
        with torch_threads(int(cpus)):
            value = target(**args, **extra)
        return {"value": value, "error": None, "error_type": None, "seconds": time.perf_counter() - start}
    except Exception as error:  # noqa: BLE001 — reported with the job's config, see JobResult.error
        tail = "".join(traceback.format_exception(error)[-6:])
        return {"value": None, "error": f"{type(error).__name__}: {error}\n{tail}",
                "error_type": type(error).__name__, "seconds": time.perf_counter() - start}


class _Tracker:
    """Progress over a batch of jobs: step = finished jobs, with failures and an ETA in seconds."""

    def __init__(self, total: int, on_progress: Optional[ProgressCallback]):
        self.total, self.done, self.failed = total, 0, 0
        self.on_progress, self.start = on_progress, time.perf_counter()

    def finished(self, result: JobResult) -> None:
        self.done += 1
        self.failed += 0 if result.ok else 1
        if self.on_progress is not None:
            elapsed = time.perf_counter() - self.start
            eta = elapsed / self.done * (self.total - self.done)
            self.on_progress(Progress("jobs", self.done, self.total, {"failed": self.failed, "eta_s": eta}))


class InlineExecutor:
    """Runs jobs one after another in this process; Ray is never imported."""

    name = "inline"

    def run(self, jobs: Sequence[Job], *, on_progress: Optional[ProgressCallback] = None,
            should_stop: Optional[StopCheck] = None) -> Iterator[JobResult]:
        tracker = _Tracker(len(jobs), on_progress)
        for job in jobs:
            if should_stop is not None and should_stop():
                raise RunCancelled("cancelled")
            # the running job sees the stop check too (a job function taking ``should_stop`` ends at its next
            # batch), so a Cancel does not wait for the current job to finish
            outcome = _execute(job.function, job.args, job.cpus, None, should_stop)
            if outcome["error_type"] == "RunCancelled":
                raise RunCancelled("cancelled")
            result = JobResult(job, **outcome)
            tracker.finished(result)
            yield result

    def run_remote(self, job: Job, on_progress: Optional[ProgressCallback] = None,
                   should_stop: Optional[StopCheck] = None) -> Any:
        outcome = _execute(job.function, job.args, job.cpus, on_progress, should_stop)
        return _value_or_raise(job, outcome)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _value_or_raise(job: Job, outcome: dict) -> Any:
    if outcome["error"] is None:
        return outcome["value"]
    if outcome["error_type"] == "RunCancelled":
        raise RunCancelled("cancelled")
    raise JobFailed(f"job {job.describe()} failed: {outcome['error']}")


def make_executor(kind: str = "inline", *, address: Optional[str] = None, num_cpus: Optional[int] = None,
                  niceness: int = 0):
    """``"inline"``, ``"process"`` (one worker process on this machine, at ``niceness`` below this one) or
    ``"ray"`` (``address``: an existing cluster; else ``RAY_ADDRESS``; else a local Ray)."""
    if kind == "inline":
        return InlineExecutor()
    if kind == "process":
        from engine.process_executor import ProcessExecutor

        return ProcessExecutor(niceness=niceness)
    if kind == "ray":
        from engine.ray_executor import RayExecutor

        return RayExecutor(address=address, num_cpus=num_cpus)
    raise ValueError(f"unknown executor {kind!r}; choose inline, process or ray")


# ------------------------------------------------------------------------------ results as they arrive
class ResultLog:
    """An append-only JSON-lines file of finished results, keyed by `Job.key`: a rerun skips what is in it.

    A line is written (and flushed) as each result arrives, so an interrupted batch loses only the jobs
    that were running; a torn last line (the process killed mid-write) is ignored on reading.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def read(self) -> dict[str, Any]:
        done = {}
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                done[entry["key"]] = entry["value"]
        return done

    def append(self, key: str, value: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps({"key": key, "value": value}, default=_plain) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def _plain(value):
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def comparable(record: Any) -> str:
    """A canonical JSON text of ``record`` without `TIMING_FIELDS` (at any depth): equal text = same result."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in TIMING_FIELDS}
        if isinstance(value, (list, tuple)):
            return [strip(v) for v in value]
        return value

    return json.dumps(strip(json.loads(json.dumps(record, default=_plain))), sort_keys=True)


# ------------------------------------------------------------------- what jobs name instead of objects
def dataset_ref(name: str, root: str | Path | None = None, download: bool = False) -> dict:
    """A plain-value reference to a dataset a worker can open: a registered name, or an ``.npz`` path
    written by `save_dataset_npz` (how a tiny fixture or the GPU check's data travels)."""
    if str(name).endswith(".npz"):
        return {"npz": str(Path(name).resolve())}
    return {"name": name, "root": None if root is None else str(root), "download": bool(download)}


def open_dataset(ref: dict):
    """The dataset behind a `dataset_ref` (cached per process, like `engine.data.load_dataset`)."""
    if "npz" in ref:
        return _open_npz(ref["npz"])
    from engine.data import load_dataset

    return load_dataset(ref["name"], root=ref.get("root"), download=ref.get("download", False))


def save_dataset_npz(dataset, path: str | Path) -> Path:
    """Write ``dataset`` (uint8 images, labels, its settings) as one compressed .npz."""
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, name=dataset.name, classes=np.array(dataset.classes), hflip=dataset.hflip,
                        validation_size=dataset.validation_size, train_x=dataset.train_images.numpy(),
                        train_y=dataset.train_labels.numpy(), test_x=dataset.test_images.numpy(),
                        test_y=dataset.test_labels.numpy())
    return path


@functools.lru_cache(maxsize=2)
def _open_npz(path: str):
    import numpy as np

    from engine.data import from_arrays

    if not Path(path).is_file():
        raise FileNotFoundError(f"dataset file {path} does not exist")
    with np.load(path, allow_pickle=False) as arrays:
        return from_arrays(str(arrays["name"]), tuple(str(c) for c in arrays["classes"]), arrays["train_x"],
                           arrays["train_y"], arrays["test_x"], arrays["test_y"], hflip=bool(arrays["hflip"]),
                           validation_size=int(arrays["validation_size"]), source=f"npz:{Path(path).name}")


@functools.lru_cache(maxsize=2)
def open_model(ref_json: str, checkpoint: Optional[str], device: str):
    """The model a batch of jobs starts from (cached per worker process: jobs never mutate it)."""
    from engine.checkpoints import load_checkpoint
    from engine.references import load_original

    dataset = open_dataset(json.loads(ref_json))
    if checkpoint is None:
        return load_original(dataset, device=device)[0]
    return load_checkpoint(checkpoint, device=device)[0]
