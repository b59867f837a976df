"""What one background job does, as one engine call per kind of job; the caller passes its folders and
settings (a `Workspace`) and gets files on disk:

    unlearn_run(request, workspace, run_dir)   original's figures → Retrain reference → unlearn → run.json + model
    insights_run(unlearned, workspace)         insights/ + scores.npz beside that run
    reference_run(request, workspace)          a Retrain for a forget set without one, then Avg. Gap back-fill

Requests are frozen values (no callables, nothing mutable), so a job queue can hold and show them safely.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from engine import distributions, references, runs
from engine.checkpoints import load_checkpoint
from engine.data import ImageDataset, load_dataset
from engine.evaluation import SplitOutputs, evaluate, evaluate_outputs
from engine.methods import METHODS, MethodConfig
from engine.progress import SHUTDOWN, Progress, ProgressCallback, RunCancelled, StopCheck
from engine.records import RunRecord, read_record, write_record
from engine.splits import DataSplit, ForgetSpec, make_split
from engine.training import RECIPES, Outputs, TrainRecipe, device_name, predict, resolve_device
from engine.unlearning import run_unlearning

HISTORY_ROWS = 400            # loss-curve rows kept in a record (evenly thinned, the last kept)
EVAL_CACHE_LIMIT = 256        # forget sets whose original-model figures are kept (a few kB each)


@dataclass(frozen=True)
class Workspace:
    """Where a job's files go and the settings that shape it (the app's fast mode, insight sample sizes)."""

    runs: Path
    fast: bool = False
    retrain_recipe: Optional[TrainRecipe] = None      # None: the architecture's own recipe
    insight_options: dict = field(default_factory=dict, hash=False)   # engine.InsightsConfig fields

    @property
    def references(self) -> Path:
        return Path(self.runs) / "_references"

    @property
    def insight_cache(self) -> Path:
        return Path(self.runs) / "_insight_cache"


@dataclass(frozen=True)
class RunRequest:
    """An unlearning run as the user started it: the config built (and validated) when Start was pressed."""

    method: str
    config: MethodConfig
    forget: ForgetSpec
    seed: int = 0
    dataset: str = "fashion-mini"
    device: Optional[str] = None
    original: Optional[str] = None     # path of an uploaded original; None = the shipped one

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if not isinstance(self.config, METHODS[self.method].config_class):
            raise ValueError(f"{self.method} needs a {METHODS[self.method].config_class.__name__}, "
                             f"got {type(self.config).__name__}")

    def identity(self, fast: bool = False) -> str:
        """What makes two requests compute the same run (engine.identity): equal identities, equal records
        (timing and owner aside), so the app computes the run once."""
        from engine.identity import original_sha256, run_identity

        return run_identity(original_sha=original_sha256(self.dataset, self.original), forget_key=self.forget.key(),
                            method=self.method, config=self.config.to_dict(), seed=self.seed, dataset=self.dataset,
                            device=resolve_device(self.device), torch_version=torch.__version__, fast=fast)


@dataclass(frozen=True)
class ReferenceRequest:
    forget: ForgetSpec
    dataset: str = "fashion-mini"
    device: Optional[str] = None
    seed: int = 0


@dataclass(frozen=True)
class AuditRequest:
    """A deep per-example audit of a finished run (`engine.audit_live.deep_audit`): its folder, the request that
    produced it (method, config, forget set, seed) and how many runs / Retrains to use."""

    run_dir: str
    run: RunRequest
    runs: int = 8
    population_size: int = 8


@dataclass(eq=False)
class UnlearnedRun:
    """A run whose metrics are saved, with what its insights need still in memory."""

    run_dir: Path
    record: RunRecord
    original: nn.Module
    unlearned: nn.Module
    dataset: ImageDataset
    split: DataSplit
    device: torch.device


# ---------------------------------------------------------------------------------- the original's figures
_POOL: dict[str, tuple[Outputs, Outputs]] = {}
_EVAL_CACHE: dict[str, dict] = {}
_POOL_LOCK, _EVAL_LOCK = threading.Lock(), threading.Lock()


def pool_outputs(model: nn.Module, dataset: ImageDataset, device) -> tuple[Outputs, Outputs]:
    """The shipped original's outputs on the whole training pool and test set, computed once per process:
    every forget set's evaluation is then a matter of indexing (seconds saved on each run)."""
    with _POOL_LOCK:          # one computation; a second caller (warm-up vs. first run) waits for it
        if dataset.name not in _POOL:
            _POOL[dataset.name] = (predict(model, dataset.train_images, device=device),
                                   predict(model, dataset.test_images, device=device))
        return _POOL[dataset.name]


def original_metrics(model: nn.Module, dataset: ImageDataset, split: DataSplit, device) -> dict:
    """The shipped original's metrics on ``split`` (a pure function of the forget spec, so cached by it)."""
    key = f"{dataset.name}:{split.spec.key()}"
    with _EVAL_LOCK:
        if key in _EVAL_CACHE:
            return _EVAL_CACHE[key]
    pool, test = pool_outputs(model, dataset, device)

    def take(indices):
        return Outputs(pool.logits[indices], pool.features[indices])

    outputs = SplitOutputs(train=take(split.train), test=test,
                           validation=take(np.concatenate([split.validation, split.validation_forget])))
    metrics = evaluate_outputs(outputs, dataset, split).to_dict()
    with _EVAL_LOCK:
        _EVAL_CACHE[key] = metrics
        while len(_EVAL_CACHE) > EVAL_CACHE_LIMIT:        # bounded: one entry per forget set ever asked for
            _EVAL_CACHE.pop(next(iter(_EVAL_CACHE)))
    return metrics


# ---------------------------------------------------------------------------------- the three jobs
def unlearn_run(request: RunRequest, workspace: Workspace, run_dir: Path, *, owner: Optional[str] = None,
                job: Optional[str] = None, on_progress: Optional[ProgressCallback] = None,
                should_stop: Optional[StopCheck] = None) -> UnlearnedRun:
    """Unlearn, evaluate and save into ``run_dir``: run.json says "running" first, then how it ended."""
    report = on_progress or (lambda progress: None)
    stop = should_stop or (lambda: False)
    dataset = load_dataset(request.dataset)
    device = resolve_device(request.device)
    record = RunRecord(kind="unlearned", method=request.method, label=METHODS[request.method].label,
                       config=request.config.to_dict(), seed=request.seed, forget=request.forget,
                       spec_text=request.forget.describe(dataset.classes), dataset=dataset.name,
                       device=device_name(device), fast=workspace.fast, original=request.original,
                       identity=request.identity(workspace.fast), owner=owner, job=job).start()
    write_record(run_dir, record)
    try:
        report(Progress("preparing", 0, 1))
        if request.original:     # the user's uploaded original: not the shipped one's cached pool outputs
            original, _ = load_checkpoint(request.original, device=device)
        else:
            original, _ = references.load_original(dataset, device=device)
        split = make_split(dataset, request.forget)
        report(Progress("evaluating the original model", 0, 1))
        record.original_metrics = (evaluate(original, dataset, split, device=device).to_dict() if request.original
                                   else original_metrics(original, dataset, split, device))
        record.reference_metrics, record.reference_source = references.reference_metrics(
            dataset.name, request.forget, workspace.references, fast=workspace.fast)
        outcome = run_unlearning(request.method, original, dataset, split, request.config, device=device,
                                 seed=request.seed, on_progress=on_progress, should_stop=should_stop,
                                 reference=references.gap_scores(record.reference_metrics))
        record.history = _thin(outcome.result.history or [], HISTORY_ROWS)
        record.insights_started()           # announced with the metrics: pages show them now, insights follow
        runs.save_run(run_dir, outcome, record=record)
        report(Progress("metrics ready", 1, 1))
    except BaseException as exc:
        if isinstance(exc, RunCancelled) or stop():
            record.insights = "none"
            record.interrupt() if stop() == SHUTDOWN else record.cancel()
        else:
            record.insights = "none"
            record.fail(f"{type(exc).__name__}: {exc}")
        write_record(run_dir, record)
        raise
    return UnlearnedRun(run_dir, record, original, outcome.result.model, dataset, split, device)


def insights_run(run: UnlearnedRun, workspace: Workspace, *, on_progress: Optional[ProgressCallback] = None,
                 should_stop: Optional[StopCheck] = None) -> RunRecord:
    """Insights and score distributions beside a finished run (Retrain included when it exists). The metrics
    stand when the pictures fail: the record then says why."""
    from engine.insights import InsightsConfig, compute_insights

    stop = should_stop or (lambda: False)
    try:
        path, _ = references.locate_reference(run.dataset.name, run.split.spec, workspace.references,
                                              fast=workspace.fast)
        retrained = load_checkpoint(path, device=run.device)[0] if path is not None else None
        insights = compute_insights(run.original, run.unlearned, run.dataset, run.split, retrained=retrained,
                                    device=run.device, seed=run.record.seed, on_progress=on_progress,
                                    should_stop=should_stop, config=InsightsConfig(**workspace.insight_options),
                                    cache=_insight_cache(workspace.insight_cache))
        insights.save(Path(run.run_dir) / "insights")
        models = {"original": run.original, "unlearned": run.unlearned,
                  **({"retrained": retrained} if retrained is not None else {})}
        distributions.save_score_distributions(run.run_dir, distributions.score_distributions(
            models, run.dataset, run.split, device=run.device, seed=run.record.seed,
            map_ids=insights.features.sample_ids))
        _quick_audit(run, workspace)
        status, error = "ready", None
    except Exception as exc:  # noqa: BLE001 — metrics stand even when the pictures fail
        stopped = stop()
        status = ("interrupted" if stopped == SHUTDOWN else "cancelled") if stopped else "failed"
        error = f"{type(exc).__name__}: {exc}"
    record = read_record(run.run_dir)    # a background Retrain may have filled the gap meanwhile
    record.insights_ended(status, error)
    write_record(run.run_dir, record)
    run.record = record
    return record


def _quick_audit(run: UnlearnedRun, workspace: Workspace) -> None:
    """The per-example audit against the shipped populations (`engine.audit_live`), beside the insights; a
    failure leaves a note in ``audit.json`` and the insights stand."""
    from engine import audit_live

    try:
        figures, arrays = audit_live.quick_audit(
            run.unlearned, run.dataset, run.split, device=run.device, run_scores=run.record.metrics,
            runs_root=workspace.runs, recipe=audit_live.recipe_of(run.dataset.name, run.record.original),
            split_seed=run.record.split_seed)
    except Exception as exc:  # noqa: BLE001 — the audit is an extra; the run and its insights stand
        figures, arrays = {"error": f"{type(exc).__name__}: {exc}"}, {}
    audit_live.write_audit(run.run_dir, figures, arrays)


def audit_run(request: AuditRequest, workspace: Workspace, *, on_progress: Optional[ProgressCallback] = None,
              should_stop: Optional[StopCheck] = None) -> dict:
    """The deep audit of a finished run: forgetting quality and per-example ε (added to its audit files)."""
    from engine import audit_live
    from engine.executor import dataset_ref

    record = read_record(request.run_dir)
    if record.status != "finished":
        raise ValueError(f"the run in {request.run_dir} is {record.status}, not finished: nothing to audit")
    return audit_live.deep_audit(
        Path(request.run_dir), request=request.run, dataset_ref=dataset_ref(request.run.dataset),
        runs_root=workspace.runs, run_scores=record.metrics, device=resolve_device(request.run.device),
        runs=request.runs, population_size=request.population_size, retrain_recipe=workspace.retrain_recipe,
        recipe=audit_live.recipe_of(record.dataset, record.original), split_seed=record.split_seed,
        on_progress=on_progress, should_stop=should_stop)


def reference_run(request: ReferenceRequest, workspace: Workspace, *,
                  on_progress: Optional[ProgressCallback] = None,
                  should_stop: Optional[StopCheck] = None) -> Path:
    """Exact unlearning for a forget set with no reference yet; saved for every later run on it, and the
    finished runs on that set that had no Avg. Gap get it now."""
    dataset = load_dataset(request.dataset)
    path, metrics = references.train_reference(dataset, request.forget, workspace.references,
                                               recipe=workspace.retrain_recipe, fast=workspace.fast,
                                               device=resolve_device(request.device), seed=request.seed,
                                               on_progress=on_progress, should_stop=should_stop)
    runs.fill_in_gaps(workspace.runs, dataset.name, request.forget, metrics)
    return path


def fast_recipe(epochs: int, architecture: str = "small-cnn") -> TrainRecipe:
    """The architecture's recipe cut to ``epochs`` (the app's fast mode: a 1-epoch background Retrain)."""
    return replace(RECIPES[architecture], epochs=epochs)


_INSIGHT_CACHES: dict[Path, object] = {}


def _insight_cache(folder: Path):
    """Outputs, saliency and the original's UMAP fit, shared by every run of the process and kept on disk."""
    from engine.insights import InsightsCache

    folder = Path(folder)
    if folder not in _INSIGHT_CACHES:
        _INSIGHT_CACHES[folder] = InsightsCache(folder)
    return _INSIGHT_CACHES[folder]


def _thin(rows: list, limit: int) -> list:
    """At most ``limit`` rows, evenly spaced, the last one kept."""
    if len(rows) <= limit:
        return rows
    step = len(rows) / limit
    return [rows[int(i * step)] for i in range(limit - 1)] + [rows[-1]]
