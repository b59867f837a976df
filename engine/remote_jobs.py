"""The app's three kinds of job as executor jobs, so a Ray worker can run them (picklable values in and out):

    remote_unlearn(request, workspace, run_dir)   engine.unlearn_run            → SavedRun (no models)
    remote_insights(run=SavedRun, workspace)      engine.insights_run, the run reopened from its folder → RunRecord
    remote_reference(request, workspace)          engine.reference_run          → the reference's path
    remote_audit(request, workspace)              engine.audit_run              → the run's audit figures

The worker writes into the run folder the caller named, so caller and workers share it (one machine, or a
folder every node mounts at the same path). Every snapshot a job reports carries ``where``, "<placement> ·
<the worker's device name>" (e.g. "Ray cluster · NVIDIA H200"), and the run record's ``device`` says the same,
so the app can show where a run executed. `remote_job` wraps one of these functions as an `executor.Job`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from engine.executor import Job
from engine.progress import Progress, ProgressCallback, StopCheck
from engine.records import RunRecord, read_record, write_record
from engine.workflow import (AuditRequest, ReferenceRequest, RunRequest, UnlearnedRun, Workspace, audit_run,
                             insights_run, reference_run, unlearn_run)


@dataclass(frozen=True)
class SavedRun:
    """What the caller gets back from `remote_unlearn`: the run's folder and record (the models stay on disk)."""

    run_dir: str
    record: RunRecord
    request: RunRequest


def remote_job(function: Callable, args: dict, *, cpus: float = 1.0, gpus: float = 0.0) -> Job:
    """An `executor.Job` that runs ``function`` (one of this module's) with ``args``."""
    if function not in (remote_unlearn, remote_insights, remote_reference, remote_audit):
        raise ValueError(f"{getattr(function, '__name__', function)!r} is not one of the app's remote jobs")
    return Job(f"{__name__}:{function.__name__}", dict(args), key=function.__name__, cpus=cpus, gpus=gpus)


def where(placement: str, device: Optional[str] = None) -> str:
    """e.g. "Ray cluster · CPU (2 threads)": ``placement`` and the device a request names (None: the best one
    here) as this worker sees it (torch's thread count is the job's CPU count: the executor pins it)."""
    from engine.training import device_name, resolve_device

    return f"{placement} · {device_name(resolve_device(device))}"


def _tagged(on_progress: Optional[ProgressCallback], label: str) -> Optional[ProgressCallback]:
    if on_progress is None:
        return None
    return lambda progress: on_progress(Progress(progress.stage, progress.step, progress.total,
                                                 {**progress.metrics, "where": label}))


def remote_unlearn(request: RunRequest, workspace: Workspace, run_dir: str, *, owner: Optional[str] = None,
                   job: Optional[str] = None, placement: str = "remote",
                   on_progress: Optional[ProgressCallback] = None, should_stop: Optional[StopCheck] = None) -> SavedRun:
    """`engine.unlearn_run` on this worker; the record's device then names the placement too (also when the
    run was cancelled or failed: the record is written either way)."""
    label = where(placement, request.device)
    try:
        done = unlearn_run(request, workspace, Path(run_dir), owner=owner, job=job,
                           on_progress=_tagged(on_progress, label), should_stop=should_stop)
    finally:
        _name_device(Path(run_dir), label)
    return SavedRun(str(run_dir), read_record(run_dir), request)


def _name_device(run_dir: Path, label: str) -> None:
    try:
        record = read_record(run_dir)
    except Exception:  # noqa: BLE001 — nothing written yet (the run failed before its first record)
        return
    record.device = label
    write_record(run_dir, record)


def reopen(run: SavedRun) -> UnlearnedRun:
    """The in-memory run `insights_run` needs, rebuilt from the folder `remote_unlearn` wrote."""
    from engine.checkpoints import load_checkpoint
    from engine.data import load_dataset
    from engine.references import load_original
    from engine.runs import MODEL_NAME
    from engine.splits import make_split
    from engine.training import resolve_device

    request = run.request
    dataset = load_dataset(request.dataset)
    device = resolve_device(request.device)
    if request.original:
        original = load_checkpoint(request.original, device=device)[0]
    else:
        original = load_original(dataset, device=device)[0]
    unlearned = load_checkpoint(Path(run.run_dir) / MODEL_NAME, device=device)[0]
    split = make_split(dataset, request.forget, split_seed=run.record.split_seed)
    return UnlearnedRun(Path(run.run_dir), run.record, original, unlearned, dataset, split, device)


def remote_insights(run: SavedRun, workspace: Workspace, *, placement: str = "remote",
                    on_progress: Optional[ProgressCallback] = None,
                    should_stop: Optional[StopCheck] = None) -> RunRecord:
    label = where(placement, run.request.device)
    return insights_run(reopen(run), workspace, on_progress=_tagged(on_progress, label), should_stop=should_stop)


def remote_reference(request: ReferenceRequest, workspace: Workspace, *, placement: str = "remote",
                     on_progress: Optional[ProgressCallback] = None, should_stop: Optional[StopCheck] = None) -> str:
    label = where(placement, request.device)
    return str(reference_run(request, workspace, on_progress=_tagged(on_progress, label), should_stop=should_stop))


def remote_audit(request: AuditRequest, workspace: Workspace, *, placement: str = "remote",
                 on_progress: Optional[ProgressCallback] = None, should_stop: Optional[StopCheck] = None) -> dict:
    label = where(placement, request.run.device)
    return audit_run(request, workspace, on_progress=_tagged(on_progress, label), should_stop=should_stop)


def warm_up(dataset: str) -> None:
    """Load the dataset, the shipped original and its outputs on the training pool into this worker's caches,
    so its first run skips them (the app's worker process runs this when the server starts)."""
    from engine.data import load_dataset
    from engine.references import load_original
    from engine.training import resolve_device
    from engine.workflow import pool_outputs

    data = load_dataset(dataset)
    device = resolve_device(None)
    model, _ = load_original(data, device=device)
    pool_outputs(model, data, device)
