"""What a run does, step by step, in the worker thread (no `st.*` here): engine calls and the run directory.

unlearn_work:    evaluate the original on the forget spec → find the Retrain reference → unlearn
                 (engine.run_unlearning) → save record + checkpoint → insights (engine.compute_insights).
reference_work:  exact unlearning for a forget set without a precomputed reference, in the background;
                 saved once under runs/_references and reused by every later run on the same set.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import engine
from app import settings, store

_EVAL_CACHE: dict[str, dict] = {}        # original model's metrics per forget spec (pure function of the spec)
_POOL_CACHE: dict[str, tuple] = {}       # original model's outputs on the training pool and test set
_EVAL_LOCK = threading.Lock()
_POOL_LOCK = threading.Lock()
EVAL_CACHE_LIMIT = 256                   # forget sets kept (a few kB each); the pool outputs: one per dataset


# ---------------------------------------------------------------------------------------------- methods
def methods() -> dict:
    """name → MethodInfo(name, label, summary, config_class, unlearn)."""
    return dict(engine.METHODS)


def default_method() -> str:
    names = list(methods())
    return "wsscl" if "wsscl" in names else names[0]


def label_of(method: str) -> str:
    info = methods().get(method)
    return getattr(info, "label", method) if info is not None else method


def config_fields(method: str) -> list:
    info = methods().get(method)
    return list(engine.config_fields(info.config_class)) if info is not None else []


def default_config(method: str, forget_kind: str | None = None) -> dict:
    """The method's defaults for the forget setting, shrunk by UNLEARNING_LAB_FAST=1 where the config has matching fields."""
    values = {}
    setting = engine.setting_defaults(method, forget_kind)
    for f in config_fields(method):
        value = setting.get(f.name, f.default)
        if settings.FAST and f.name in settings.FAST_OVERRIDES and isinstance(value, (int, float)):
            value = min(value, type(f.default)(settings.FAST_OVERRIDES[f.name]))   # shrink, never enlarge
            if getattr(f, "min", None) is not None:
                value = max(value, f.min)
            if getattr(f, "max", None) is not None:
                value = min(value, f.max)
        values[f.name] = value
    return values


# ---------------------------------------------------------------------------------------------- references
def reference_checkpoint(dataset_name: str, spec: dict) -> tuple[Optional[Path], str]:
    """(path, "precomputed" | "computed") of the Retrain model for this forget set, or (None, "")."""
    path = engine.find_reference(dataset_name, engine.ForgetSpec.from_dict(spec))
    if path is not None:
        return path, "precomputed"
    path = store.computed_reference_path(dataset_name, spec)
    return (path, "computed") if path.is_file() else (None, "")


def reference_metrics(dataset_name: str, spec: dict) -> tuple[Optional[dict], str]:
    """The Retrain model's metrics on this forget set, from its sidecar (no model loaded)."""
    path, source = reference_checkpoint(dataset_name, spec)
    if path is None:
        return None, ""
    try:
        return engine.read_sidecar(path).get("metrics"), source
    except engine.CheckpointError:
        return None, ""


def original_outputs(model, dataset, device) -> tuple:
    """The original model's outputs on the whole training pool and test set: computed once per process,
    then every forget set's evaluation is a matter of indexing (seconds saved on each run)."""
    with _POOL_LOCK:          # one computation; a second caller (warm-up vs. first run) waits for it
        if dataset.name not in _POOL_CACHE:
            pool = engine.predict(model, dataset.train_images, device=device)
            test = engine.predict(model, dataset.test_images, device=device)
            _POOL_CACHE[dataset.name] = (pool, test)
        return _POOL_CACHE[dataset.name]


def original_metrics(model, dataset, split, spec: dict, device) -> dict:
    key = f"{dataset.name}:{store.spec_key(spec)}"
    with _EVAL_LOCK:
        if key in _EVAL_CACHE:
            return _EVAL_CACHE[key]
    pool, test = original_outputs(model, dataset, device)

    def take(indices):
        return engine.Outputs(pool.logits[indices], pool.features[indices])

    import numpy as np

    outputs = engine.SplitOutputs(train=take(split.train),
                                  validation=take(np.concatenate([split.validation, split.validation_forget])),
                                  test=test)
    metrics = engine.evaluate_outputs(outputs, dataset, split).to_dict()
    with _EVAL_LOCK:
        _EVAL_CACHE[key] = metrics
        while len(_EVAL_CACHE) > EVAL_CACHE_LIMIT:        # bounded: one entry per forget set ever asked for
            _EVAL_CACHE.pop(next(iter(_EVAL_CACHE)))
    return metrics


def _progress(report):
    return lambda p: report(p.stage, p.step, p.total, **dict(p.metrics))


# ---------------------------------------------------------------------------------------------- work
def unlearn_work(job, report, should_stop) -> dict:
    params = job.params
    method, spec, seed = params["method"], params["spec"], int(params.get("seed", 0))
    dataset = engine.load_dataset(params.get("dataset", settings.DATASET))
    device = engine.resolve_device(params.get("device"))
    run_dir = store.new_run_dir(method, seed, dataset.name)
    record = {"kind": "unlearned", "status": "running", "pid": os.getpid(), "process": store.PROCESS_TOKEN,
              "created": _now(), "job": job.id,
              "owner": job.owner, "method": method, "label": label_of(method),
              "config": dict(params.get("config") or {}), "seed": seed, "spec": spec, "forget": spec,
              "spec_text": engine.ForgetSpec.from_dict(spec).describe(dataset.classes), "dataset": dataset.name,
              "device": engine.device_name(device), "fast": settings.FAST, "insights": "none"}
    store.write_record(run_dir, record)
    try:
        report("preparing", 0, 1)
        if params.get("original"):     # the user's uploaded original (app/uploads.py); not the cached pool outputs
            original, _ = engine.load_checkpoint(params["original"], device=device)
            record["original"] = str(params["original"])
        else:
            original, _ = engine.load_original(dataset, device=device)
        split = engine.make_split(dataset, engine.ForgetSpec.from_dict(spec))
        report("evaluating the original model", 0, 1)
        record["original_metrics"] = (engine.evaluate(original, dataset, split, device=device).to_dict()
                                      if params.get("original") else original_metrics(original, dataset, split, spec,
                                                                                     device))
        ref_metrics, ref_source = reference_metrics(dataset.name, spec)
        scores = {k: float(ref_metrics[k]) for k in engine.GAP_KEYS} if ref_metrics else None
        outcome = engine.run_unlearning(method, original, dataset, split, record["config"], device=device, seed=seed,
                                        on_progress=_progress(report), should_stop=should_stop,
                                        reference=scores)
        extra = {k: record[k] for k in ("pid", "process", "job", "owner", "spec", "spec_text", "fast", "original_metrics")}
        extra.update({k: record[k] for k in ("original",) if k in record})
        extra["history"] = _thin(_plain(outcome.result.history or []), 400)   # the loss curves of Results
        extra.update(reference_metrics=ref_metrics, reference_source=ref_source,
                     insights="computing" if hasattr(engine, "compute_insights") else "unavailable")
        engine.runs.save_run(run_dir, outcome, extra=extra)
        record = store.read_record(run_dir)
        job.params["run_id"] = store.run_id(run_dir)     # pages show the metrics now, insights follow
        report("metrics ready", 1, 1)
    except BaseException as exc:
        cancelled = type(exc).__name__ == "RunCancelled" or should_stop()
        record["status"] = "cancelled" if cancelled else "failed"
        record["error"] = None if cancelled else f"{type(exc).__name__}: {exc}"
        store.write_record(run_dir, record)
        raise
    if ref_metrics is None and params.get("reference_job") is not None:
        params["reference_job"](spec)           # exact unlearning for this set, queued behind this run
    if record["insights"] == "computing":
        try:
            compute_insights(record, run_dir, original, outcome.result.model, dataset, split, device, report,
                             should_stop)
            status, error = "ready", None
        except Exception as exc:  # noqa: BLE001 — metrics stand even when the pictures fail
            status, error = ("cancelled" if should_stop() else "failed"), f"{type(exc).__name__}: {exc}"
        record = store.read_record(run_dir) or record      # a background Retrain may have filled the gap meanwhile
        record["insights"], record["insights_error"] = status, error
        store.write_record(run_dir, record)
    return {"run_id": store.run_id(run_dir)}


def _now() -> str:
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def compute_insights(record, run_dir, original, unlearned, dataset, split, device, report, should_stop) -> None:
    """Insights for a finished run, saved as run_dir/insights.{npz,json} (Retrain included when it exists)."""
    retrained = None
    path, _ = reference_checkpoint(dataset.name, record["spec"])
    if path is not None:
        retrained, _ = engine.load_checkpoint(path, device=device)
    options = {}
    if hasattr(engine, "InsightsConfig"):
        options["config"] = engine.InsightsConfig(**settings.INSIGHT_OPTIONS)
    if hasattr(engine, "InsightsCache"):
        options["cache"] = _insight_cache()
    insights = engine.compute_insights(original, unlearned, dataset, split, retrained=retrained, device=device,
                                       seed=int(record.get("seed", 0)), on_progress=_progress(report),
                                       should_stop=should_stop, **options)
    insights.save(Path(run_dir) / "insights")
    models = {"original": original, "unlearned": unlearned, **({"retrained": retrained} if retrained is not None else {})}
    save_score_distributions(Path(run_dir) / "scores.npz", models, dataset, split, device, int(record.get("seed", 0)),
                             map_ids=insights.features.sample_ids)


def save_score_distributions(path: Path, models: dict, dataset, split, device, seed: int, count: int = 500,
                             map_ids=None) -> None:
    """Membership scores (engine.membership_scores) of a forget sample and of unseen test images, per model:
    the distributions the privacy page draws (the attacks themselves live in the insights); and each model's
    prediction and confidence on the UMAP's points, for the feature-space hover."""
    import numpy as np

    rng = np.random.default_rng(seed)
    nonmembers = split.test_forget if len(split.test_forget) else split.test
    groups = {"forget": (dataset.train_images, dataset.train_labels, split.forget),
              "unseen": (dataset.test_images, dataset.test_labels, nonmembers)}
    arrays = {}
    for group, (images, labels, ids) in groups.items():
        ids = np.sort(rng.choice(ids, min(count, len(ids)), replace=False))
        for name, model in models.items():
            probabilities = engine.predict(model, images[ids], device=device).probabilities
            for score, values in engine.membership_scores(probabilities, labels.numpy()[ids]).items():
                arrays[f"{name}/{group}/{score}"] = values.astype(np.float32)
    if map_ids is not None:
        for name, model in models.items():
            probabilities = engine.predict(model, dataset.train_images[np.asarray(map_ids)], device=device).probabilities
            arrays[f"{name}/map/prediction"] = probabilities.argmax(1).astype(np.int16)
            arrays[f"{name}/map/confidence"] = probabilities.max(1).astype(np.float32)
    np.savez_compressed(path, **arrays)


def load_score_distributions(run: dict) -> dict | None:
    import numpy as np

    path = Path(run["path"]) / "scores.npz"
    if not path.is_file():
        return None
    with np.load(path) as stored:
        return {name: stored[name] for name in stored.files}


_INSIGHT_CACHE = None


def _insight_cache():
    """Outputs, saliency and the original's UMAP fit, shared by every run of the process and kept on disk."""
    global _INSIGHT_CACHE
    if _INSIGHT_CACHE is None:
        _INSIGHT_CACHE = engine.InsightsCache(store.runs_root() / "_insight_cache")
    return _INSIGHT_CACHE


def load_insights(run: dict):
    """The run's `Insights`, or None when it has none (yet)."""
    base = Path(run["path"]) / "insights"
    if run.get("insights") != "ready" or not base.with_suffix(".npz").is_file():
        return None
    return engine.Insights.load(base)


def reference_work(job, report, should_stop) -> dict:
    """Exact unlearning for a forget set with no reference yet; saved for every later run on it."""
    spec = job.params["spec"]
    dataset = engine.load_dataset(job.params.get("dataset", settings.DATASET))
    device = engine.resolve_device(job.params.get("device"))
    out = store.computed_reference_path(dataset.name, spec)
    if out.is_file():
        return {"reference": str(out)}
    split = engine.make_split(dataset, engine.ForgetSpec.from_dict(spec))
    start = time.perf_counter()
    model = engine.retrain(dataset, split, recipe=_fast_recipe() if settings.FAST else None, device=device,
                           seed=int(job.params.get("seed", 0)), on_progress=_progress(report),
                           should_stop=should_stop)
    seconds = time.perf_counter() - start
    report("evaluating Retrain", 0, 1)
    metrics = engine.evaluate(model, dataset, split, device=device).to_dict()
    engine.save_checkpoint(out, model, {"kind": "retrain", "dataset": dataset.name, "forget": spec,
                                        "seconds": seconds, "fast": settings.FAST, "metrics": metrics,
                                        "device": engine.device_name(device)})
    _fill_in_gaps(dataset.name, spec, metrics)
    return {"reference": str(out)}


def _fill_in_gaps(dataset_name: str, spec: dict, reference: dict) -> None:
    """Runs on this forget set that finished without a reference get their Avg. Gap now."""
    scores = {k: reference[k] for k in engine.GAP_KEYS}
    for record in store.list_runs():
        if record.get("dataset") == dataset_name and store.spec_key(record.get("spec") or {}) == store.spec_key(spec) \
                and record.get("status") == "finished" and not record.get("reference_metrics"):
            run_dir = Path(record["path"])
            fresh = store.read_record(run_dir) or record     # re-read: insights may have been written meanwhile
            fresh["reference_metrics"], fresh["reference_source"] = reference, "computed"
            fresh["reference"] = scores
            fresh["avg_gap"] = engine.avg_gap({k: fresh["metrics"][k] for k in engine.GAP_KEYS}, scores)
            fresh["metrics"]["avg_gap"] = fresh["avg_gap"]
            store.write_record(run_dir, fresh)


def _fast_recipe():
    import dataclasses

    return dataclasses.replace(engine.RECIPES["small-cnn"], epochs=settings.FAST_RETRAIN_EPOCHS)


def _thin(rows: list, limit: int) -> list:
    """At most ``limit`` rows, evenly spaced, the last one kept."""
    if len(rows) <= limit:
        return rows
    step = len(rows) / limit
    return [rows[int(i * step)] for i in range(limit - 1)] + [rows[-1]]


def _config_dict(config) -> dict:
    if config is None:
        return {}
    if isinstance(config, dict):
        return config
    from dataclasses import asdict, is_dataclass

    return asdict(config) if is_dataclass(config) else dict(vars(config))


def _plain(value):
    """JSON-able copy of nested history structures (numpy/tuples/dataclasses → lists/dicts/floats)."""
    import numpy as np
    from dataclasses import asdict, is_dataclass

    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if is_dataclass(value):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


# ---------------------------------------------------------------------------------------------- submitting
def submit_run(owner: str, method: str, config: dict, spec: dict, seed: int = 0, device: Optional[str] = None,
               original: Optional[str] = None):
    """Queue an unlearning run; if the forget set has no Retrain reference, one is queued right after it."""
    from app.jobs import manager

    dataset_name = settings.DATASET
    title = f"{label_of(method)} · {engine.ForgetSpec.from_dict(spec).describe(_class_names())}"
    params = {"method": method, "config": dict(config), "spec": dict(spec), "seed": seed, "device": device,
              "dataset": dataset_name, "reference_job": lambda s: submit_reference(owner, s, device),
              **({"original": str(original)} if original else {})}
    return manager().submit(owner, "unlearn", title, params, unlearn_work)


def submit_reference(owner: str, spec: dict, device: Optional[str] = None):
    """Queue exact unlearning for ``spec`` unless it exists or is already queued/running."""
    from app.jobs import TERMINAL, manager

    if reference_checkpoint(settings.DATASET, spec)[0] is not None:
        return None
    key = store.spec_key(spec)
    for job in manager().jobs():
        if job["kind"] == "reference" and job["status"] not in TERMINAL and store.spec_key(job["params"]["spec"]) == key:
            return job
    title = f"Retrain reference · {engine.ForgetSpec.from_dict(spec).describe(_class_names())}"
    return manager().submit(owner, "reference", title, {"spec": dict(spec), "device": device,
                                                        "dataset": settings.DATASET}, reference_work)


def _class_names() -> tuple[str, ...]:
    return engine.load_dataset(settings.DATASET).classes
