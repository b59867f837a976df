"""The app's side of a run, in the worker thread (no `st.*` here): one engine call per kind of job.

unlearn_work:    engine.unlearn_run (metrics saved; the job's run id is set) → a Retrain reference queued when
                 the forget set has none → engine.insights_run.
reference_work:  engine.reference_run: exact unlearning for a forget set without a reference, saved once under
                 runs/_references and reused by every later run on the same set.
audit_work:      engine.audit_run: the deep per-example audit of a finished run (N more seeds, a Retrain
                 population when the forget set has none shipped) → forgetting quality and ε in its audit files.
Everything a job needs is in its frozen request (`engine.RunRequest` / `engine.ReferenceRequest`); the folders
and fast-mode settings come from `workspace()`. `_engine_call` alone decides where each engine call runs: here,
in the worker process (UNLEARNING_LAB_WORKER=process) or on the Ray cluster at $UNLEARNING_LAB_RAY_ADDRESS (the
same calls as `engine.remote_*` jobs).
"""
from __future__ import annotations

import functools
import shutil
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


def defaults_note(method: str, spec: engine.ForgetSpec | None) -> str:
    """Which tuned defaults the form starts from, in words (docs/tuning.md says how each was chosen)."""
    if spec is None:
        return ""
    settings = engine.METHODS[method].config_class.SETTINGS
    if spec.kind == "class":
        if not settings.get("class"):
            return "one set of defaults for every setting"
        if spec.setting == "classes":
            return "defaults tuned for several whole classes at once" if "classes" in settings else \
                "the one-class defaults (this method has none tuned for several whole classes)"
        return "defaults tuned for a whole class"
    if spec.kind == "samples":
        return "defaults tuned for hand-picked images" if "samples" in settings else \
            "the random-forgetting defaults (this method has none tuned for hand-picked images)"
    return "defaults tuned for random forgetting"


def run_request(method: str, values: dict | engine.MethodConfig, spec: engine.ForgetSpec, seed: int = 0,
                device: Optional[str] = None, original: Optional[str | Path] = None) -> engine.RunRequest:
    """What Start submits: the method's config built (and validated: ValueError with the engine's message)
    from the form's values once, here; the engine runs this very object."""
    config = values if isinstance(values, engine.MethodConfig) else \
        engine.make_config(method, forget_kind=spec.setting, **values)
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


def unlearn_work(job, report, should_stop, *, queue_reference: bool = False, run_dir: Optional[Path] = None) -> dict:
    request: engine.RunRequest = job.params
    run_dir = Path(run_dir) if run_dir is not None else store.new_run_dir(request.method, request.seed, request.dataset)
    done = _engine_call(engine.unlearn_run, engine.remote_unlearn, report, should_stop, request=request,
                        workspace=workspace(), run_dir=run_dir, owner=job.owner, job=job.id)
    job.run_id = store.run_id(run_dir)            # pages show the metrics now, insights follow
    if queue_reference and done.record.reference_metrics is None:
        submit_reference(job.owner, request.forget, request.device)   # queued behind this run
    try:
        compute_insights(done, report, should_stop)
    except Exception as exc:  # noqa: BLE001 — the metrics stand even when the pictures fail
        record = engine.read_record(run_dir).insights_ended("failed", f"{type(exc).__name__}: {exc}")
        engine.write_record(run_dir, record)
    store.enforce_size_cap(keep=run_dir)          # the cap holds after the run's files are written, too
    return {"run_id": job.run_id}


def unlearn_and_reference_work(job, report, should_stop, run_dir: Optional[Path] = None) -> dict:
    """What Start queues: the run, and a Retrain for its forget set when none exists yet."""
    return unlearn_work(job, report, should_stop, queue_reference=True, run_dir=run_dir)


def compute_insights(done, report, should_stop) -> None:
    _engine_call(engine.insights_run, engine.remote_insights, report, should_stop, run=done, workspace=workspace())


def reference_work(job, report, should_stop) -> dict:
    """Exact unlearning for a forget set with no reference yet; saved for every later run on it."""
    path = _engine_call(engine.reference_run, engine.remote_reference, report, should_stop, request=job.params,
                        workspace=workspace())
    store.enforce_size_cap()
    return {"reference": str(path)}


def audit_work(job, report, should_stop) -> dict:
    """The deep audit of one finished run (its quick part was written with its insights)."""
    figures = _engine_call(engine.audit_run, engine.remote_audit, report, should_stop, request=job.params,
                           workspace=workspace())
    store.enforce_size_cap()
    return {"forgetting_quality": (figures.get("deep") or {}).get("forgetting_quality")}


# ---------------------------------------------------------------------------------------------- the audit
def load_audit(run: dict):
    """(figures, arrays) of the run's per-example audit, or None when it has none (yet)."""
    return engine.read_audit(Path(run["path"]))


def forget_spec(run: dict) -> engine.ForgetSpec:
    """A run record's forget set (a ForgetSpec, however the record holds it)."""
    return run["forget"] if isinstance(run["forget"], engine.ForgetSpec) else engine.ForgetSpec.from_dict(run["forget"])


def noise_floor(run: dict) -> dict | None:
    """The Retrain noise floor of the run's forget set ({"mean", "std", "retrains"}), or None without a population."""
    forget = forget_spec(run)
    try:
        return engine.noise_floor_for(run["dataset"], forget, runs_root=store.runs_root(),
                                      split_seed=int(run.get("split_seed", 0)), original=run.get("original"))
    except (OSError, ValueError, KeyError):
        return None


def audit_request(run: dict) -> engine.AuditRequest:
    """The deep audit of ``run``: the same method, config, forget set and first seed as the run itself."""
    forget = forget_spec(run)
    request = engine.RunRequest(method=run["method"], config=engine.make_config(run["method"], forget_kind=forget.setting,
                                                                                 **run["config"]),
                                forget=forget, seed=int(run["seed"]), dataset=run["dataset"],
                                original=run.get("original"))
    runs = 3 if settings.FAST else engine.DEEP_RUNS
    return engine.AuditRequest(run_dir=str(run["path"]), run=request, runs=runs,
                               population_size=3 if settings.FAST else engine.POPULATION_SIZE)


def audit_cost(run: dict) -> dict:
    """What the deep audit of ``run`` would cost here (seconds, runs, Retrains to build)."""
    request = audit_request(run)
    dataset = engine.load_dataset(request.run.dataset)
    shipped, _ = reference_checkpoint(dataset.name, engine.ForgetSpec(classes=(0,)))   # a Retrain's measured time
    seconds = float(engine.read_sidecar(shipped).get("seconds") or 0.0) if shipped is not None else 0.0
    return engine.deep_audit_cost(
        dataset, request.run.forget, run_seconds=float(run.get("seconds") or 10.0), runs_root=store.runs_root(),
        recipe=engine.recipe_of(dataset.name, request.run.original), split_seed=int(run.get("split_seed", 0)),
        runs=request.runs, population_size=request.population_size, retrain_seconds=seconds or 30.0)


def submit_audit(owner: str, run: dict):
    """Queue the deep audit of a finished run unless one for it is already queued or running."""
    from app.jobs import manager

    pending = pending_audit(run)
    if pending is not None:
        return pending
    return manager().submit(owner, "audit", f"Privacy audit · {label_of(run['method'])} · {run.get('spec', '')}",
                            audit_request(run), audit_work)


def pending_audit(run: dict) -> dict | None:
    from app.jobs import TERMINAL, manager

    return next((job for job in manager().jobs() if job["kind"] == "audit" and job["status"] not in TERMINAL
                 and job["params"].run_dir == str(run["path"])), None)


# ---------------------------------------------------------------------------------------------- where work runs
PLACEMENT = "Ray cluster"     # how the job panel and the run record name a run executed on the cluster
WORKER_PLACEMENT = "worker process"   # … and one executed in the local worker process (UNLEARNING_LAB_WORKER)
_CLUSTER: dict = {}
_CLUSTER_LOCK = threading.Lock()


def cluster():
    """The Ray executor at $UNLEARNING_LAB_RAY_ADDRESS (connected on the first job, then kept), or None when
    jobs run on this machine (Ray is then never imported)."""
    if not settings.RAY_ADDRESS:
        return None
    with _CLUSTER_LOCK:
        if settings.RAY_ADDRESS not in _CLUSTER:
            _CLUSTER[settings.RAY_ADDRESS] = engine.make_executor("ray", address=settings.RAY_ADDRESS)
        return _CLUSTER[settings.RAY_ADDRESS]


def worker_process():
    """The local worker process's executor when UNLEARNING_LAB_WORKER=process (started on the first job, then
    kept), else None."""
    if settings.WORKER != "process":
        return None
    with _CLUSTER_LOCK:
        if "process" not in _CLUSTER:
            from app.jobs import worker_niceness

            # The worker process runs at the worker thread's priority (UNLEARNING_LAB_WORKER_NICE, default 10):
            # at the pages' own priority it took their CPU (docs/hardening.md, classroom, measured).
            _CLUSTER["process"] = engine.make_executor("process", niceness=worker_niceness())
        return _CLUSTER["process"]


def _placement():
    """(executor, placement, cpus, gpus) for a job, or None to run it in this worker thread."""
    executor = cluster()
    if executor is not None:
        return executor, PLACEMENT, settings.RAY_CPUS, settings.RAY_GPUS
    executor = worker_process()
    if executor is not None:
        import torch

        return executor, WORKER_PLACEMENT, torch.get_num_threads(), 0.0   # the threads a thread-run would use
    return None


def _engine_call(local, remote, report, should_stop, **args):
    """The one place that chooses where a job's engine call runs: ``local`` in this worker thread, or its
    plain-value twin ``remote`` on the Ray cluster or in the worker process, whose progress snapshots (each
    naming where it runs) and Cancel go through the executor, so the job panel and Cancel behave the same."""
    where = _placement()
    if where is None:
        return local(**args, on_progress=_progress(report), should_stop=should_stop)
    executor, placement, cpus, gpus = where
    job = engine.remote_job(remote, {**args, "placement": placement}, cpus=cpus, gpus=gpus)
    try:
        return executor.run_remote(job, _progress(report), should_stop)
    except engine.JobFailed as error:      # the panel shows the remote "Type: message", not the job's config
        prefix, message = f"job {job.describe()} failed: ", str(error)
        raise engine.JobFailed(message.removeprefix(prefix).splitlines()[0]) from error


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
    """Queue a fresh unlearning run (shared or not: "Run it again myself" and scripts come here directly); if the
    forget set has no Retrain reference, one is queued right after it.

    Its record is written now, "queued", with this process's token: a run still waiting when the server stops
    is listed "interrupted (not started)", never lost. QueueFull (nothing written) past the session's share."""
    from app.jobs import QueueFull, manager

    title = f"{label_of(request.method)} · {request.forget.describe(settings.class_names())}"
    run_dir = store.new_run_dir(request.method, request.seed, request.dataset)
    record = engine.RunRecord(kind="unlearned", method=request.method, label=label_of(request.method),
                              config=request.config.to_dict(), seed=request.seed, forget=request.forget,
                              spec_text=request.forget.describe(settings.class_names()), dataset=request.dataset,
                              fast=settings.FAST, original=request.original, owner=owner).queue()
    engine.write_record(run_dir, record)

    def not_started(status: str) -> None:
        engine.write_record(run_dir, record.cancel() if status == "cancelled" else record.interrupt(started=False))

    try:
        return manager().submit(owner, "unlearn", title, request,
                                functools.partial(unlearn_and_reference_work, run_dir=run_dir), not_started=not_started)
    except QueueFull:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise


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
