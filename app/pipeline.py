"""The app's side of a run, in the worker thread (no `st.*` here): one engine call per kind of job.

unlearn_work:    engine.unlearn_run (metrics saved; the job's run id is set) → a Retrain reference queued when
                 the forget set has none → engine.insights_run.
reference_work:  engine.reference_run: exact unlearning for a forget set without a reference, saved once under
                 runs/_references and reused by every later run on the same set.
Everything a job needs is in its frozen request (`engine.RunRequest` / `engine.ReferenceRequest`); the folders
and fast-mode settings come from `workspace()`.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import engine
from app import settings, store


# ---------------------------------------------------------------------------------------------- methods
def methods() -> dict:
    """name → MethodInfo(name, label, summary, config_class, unlearn)."""
    return dict(engine.METHODS)


def default_method() -> str:
    names = list(methods())
    return "wsscl" if "wsscl" in names else names[0]


def label_of(method: str) -> str:
    info = methods().get(method)
    return info.label if info is not None else method


def config_fields(method: str) -> list:
    info = methods().get(method)
    return list(engine.config_fields(info.config_class)) if info is not None else []


def default_config(method: str, forget_kind: str | None = None) -> dict:
    """The form's starting values: the method's defaults for the forget setting, shrunk in fast mode."""
    return engine.form_defaults(method, forget_kind, fast=settings.FAST)


def run_request(method: str, values: dict | engine.MethodConfig, spec: engine.ForgetSpec, seed: int = 0,
                device: Optional[str] = None, original: Optional[str | Path] = None) -> engine.RunRequest:
    """What Start submits: the method's config built (and validated: ValueError with the engine's message)
    from the form's values once, here; the engine runs this very object."""
    config = values if isinstance(values, engine.MethodConfig) else \
        engine.make_config(method, forget_kind=spec.kind, **values)
    return engine.RunRequest(method=method, config=config, forget=spec, seed=int(seed), dataset=settings.DATASET,
                             device=device, original=str(original) if original else None)


# ---------------------------------------------------------------------------------------------- where things are
def workspace() -> engine.Workspace:
    """The run folder and the fast-mode settings, as the engine's jobs take them."""
    return engine.Workspace(runs=store.runs_root(), fast=settings.FAST, insight_options=dict(settings.INSIGHT_OPTIONS),
                            retrain_recipe=engine.fast_recipe(settings.FAST_RETRAIN_EPOCHS) if settings.FAST else None)


def reference_checkpoint(dataset_name: str, spec: engine.ForgetSpec) -> tuple[Optional[Path], str]:
    """(path, "precomputed" | "computed") of the Retrain model for this forget set, or (None, "")."""
    return engine.locate_reference(dataset_name, spec, store.reference_dir(), fast=settings.FAST)


def reference_metrics(dataset_name: str, spec: engine.ForgetSpec) -> tuple[Optional[dict], str]:
    """The Retrain model's metrics on this forget set, from its sidecar (no model loaded)."""
    return engine.reference_metrics(dataset_name, spec, store.reference_dir(), fast=settings.FAST)


def original_outputs(model, dataset, device) -> tuple:
    """The original model's outputs on the whole training pool and test set (computed once per process)."""
    return engine.pool_outputs(model, dataset, device)


def load_insights(run: dict):
    """The run's `Insights`, or None when it has none (yet)."""
    base = Path(run["path"]) / "insights"
    if run.get("insights") != "ready" or not base.with_suffix(".npz").is_file():
        return None
    return engine.Insights.load(base)


def load_score_distributions(run: dict) -> dict | None:
    return engine.load_score_distributions(run["path"])


# ---------------------------------------------------------------------------------------------- work
def _progress(report):
    return lambda p: report(p.stage, p.step, p.total, **dict(p.metrics))


def unlearn_work(job, report, should_stop, *, queue_reference: bool = False) -> dict:
    request: engine.RunRequest = job.params
    run_dir = store.new_run_dir(request.method, request.seed, request.dataset)
    done = engine.unlearn_run(request, workspace(), run_dir, owner=job.owner, job=job.id,
                              on_progress=_progress(report), should_stop=should_stop)
    job.run_id = store.run_id(run_dir)            # pages show the metrics now, insights follow
    if queue_reference and done.record.reference_metrics is None:
        submit_reference(job.owner, request.forget, request.device)   # queued behind this run
    compute_insights(done, report, should_stop)
    return {"run_id": job.run_id}


def unlearn_and_reference_work(job, report, should_stop) -> dict:
    """What Start queues: the run, and a Retrain for its forget set when none exists yet."""
    return unlearn_work(job, report, should_stop, queue_reference=True)


def compute_insights(done, report, should_stop) -> None:
    engine.insights_run(done, workspace(), on_progress=_progress(report), should_stop=should_stop)


def reference_work(job, report, should_stop) -> dict:
    """Exact unlearning for a forget set with no reference yet; saved for every later run on it."""
    path = engine.reference_run(job.params, workspace(), on_progress=_progress(report), should_stop=should_stop)
    return {"reference": str(path)}


# ---------------------------------------------------------------------------------------------- submitting
@dataclass(frozen=True)
class Started:
    """What Start did: "new" (a job queued), "joined" (an identical job already queued or running, now followed
    by this session too) or "shared" (an identical run already finished: ``run_id`` opens at once)."""

    how: str
    job_id: Optional[str] = None
    run_id: Optional[str] = None


_START_LOCK = threading.Lock()      # thirty Start clicks at once: the first queues, the others find its job


def start_run(owner: str, request: engine.RunRequest) -> Started:
    """Start's path: an identical run (engine.RunRequest.identity) is joined or served, never computed twice.
    Runs from an uploaded original stay the uploader's own (an upload is private to its session)."""
    from app import sharing
    from app.jobs import TERMINAL, manager

    if request.original:
        return Started("new", job_id=submit_run(owner, request).id)
    identity = request.identity(settings.FAST)
    with _START_LOCK:
        for job in manager().jobs():
            if job["kind"] == "unlearn" and job["status"] not in TERMINAL and not job["cancel_requested"] \
                    and isinstance(job["params"], engine.RunRequest) and not job["params"].original \
                    and job["params"].identity(settings.FAST) == identity:
                if job["run_id"] is not None:          # metrics saved, insights computing: served from disk
                    return Started("shared", run_id=job["run_id"])
                if manager().join(job["id"], owner) is not None:
                    return Started("joined", job_id=job["id"])
        run_id = sharing.find_finished(identity)
        if run_id is not None:
            return Started("shared", run_id=run_id)
        return Started("new", job_id=submit_run(owner, request).id)


def submit_run(owner: str, request: engine.RunRequest):
    """Queue an unlearning run (a fresh one, shared or not: "Run it again myself" and scripts); if the forget set
    has no Retrain reference, one is queued right after it."""
    from app.jobs import manager

    title = f"{label_of(request.method)} · {request.forget.describe(settings.class_names())}"
    return manager().submit(owner, "unlearn", title, request, unlearn_and_reference_work)


def submit_reference(owner: str, spec: engine.ForgetSpec, device: Optional[str] = None):
    """Queue exact unlearning for ``spec`` unless it exists or is already queued/running."""
    from app.jobs import manager

    if reference_checkpoint(settings.DATASET, spec)[0] is not None:
        return None
    pending = pending_reference(spec)
    if pending is not None:
        return pending
    title = f"Retrain reference · {spec.describe(settings.class_names())}"
    return manager().submit(owner, "reference", title, engine.ReferenceRequest(forget=spec, dataset=settings.DATASET,
                                                                               device=device), reference_work)


def pending_reference(spec: engine.ForgetSpec) -> dict | None:
    """The queued or running Retrain job for this forget set, as a snapshot, or None."""
    from app.jobs import TERMINAL, manager

    return next((job for job in manager().jobs() if job["kind"] == "reference" and job["status"] not in TERMINAL
                 and job["params"].forget == spec), None)
