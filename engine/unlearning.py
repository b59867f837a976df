"""The run API: unlearn with a registered method, evaluate, compare with Retrain, build the run record.

    outcome = run_unlearning("wsscl", model, dataset, split, device=torch.device("cpu"), seed=0)
    outcome.evaluation.UA, outcome.avg_gap, outcome.record["seconds"]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

import numpy as np
import torch
from torch import nn

from engine.checkpoints import now, versions
from engine.records import RunRecord
from engine.references import reference_scores_for  # noqa: F401  (its home is engine.references)
from engine.data import ImageDataset
from engine.evaluation import Evaluation, evaluate
from engine.methods import METHODS, make_config
from engine.methods.common import MethodConfig, UnlearnResult
from engine.metrics import GAP_KEYS, avg_gap
from engine.progress import ProgressCallback, StopCheck
from engine.splits import DataSplit
from engine.training import device_name


@dataclass(frozen=True, eq=False)
class RunOutcome:
    result: UnlearnResult
    evaluation: Evaluation
    reference_scores: Optional[dict]    # Retrain's UA/RA/TA/MIA under the same split, when known
    avg_gap: Optional[float]
    run: RunRecord                      # what `engine.runs.save_run` writes beside the checkpoint

    @property
    def record(self) -> dict:
        """The record's JSON form."""
        return self.run.to_json()


def run_record(result: UnlearnResult, evaluation: Evaluation, dataset: ImageDataset, split: DataSplit, *,
               device: torch.device, reference: Optional[dict], gap: Optional[float], split_seed: int = 0,
               status: str = "finished") -> RunRecord:
    return RunRecord(kind="unlearned", status=status, method=result.method, label=METHODS[result.method].label,
                     config=result.config, seed=result.seed, dataset=dataset.name, split_seed=split_seed,
                     forget=split.spec, split=split.summary(), metrics=evaluation.to_dict(), reference=reference,
                     avg_gap=gap, seconds=result.seconds, device=device_name(device), created=now(),
                     versions=versions())


def run_unlearning(method_name: str, model: nn.Module, dataset: ImageDataset, split: DataSplit,
                   config: MethodConfig | dict | None = None, *, device: torch.device | str, seed: int = 0,
                   on_progress: Optional[ProgressCallback] = None, should_stop: Optional[StopCheck] = None,
                   reference=None, split_seed: int = 0) -> RunOutcome:
    """Unlearn ``split.forget`` from ``model`` with a registered method, then evaluate it.

    Args:
        method_name: a key of ``engine.METHODS``.
        config: the method's config, a dict of overrides, or None for the tuned defaults.
        reference: Retrain scores (dict), a Retrain model or checkpoint path; None looks for a shipped one.

    Returns:
        A `RunOutcome` (the input ``model`` is unchanged).
    """
    if method_name not in METHODS:
        raise ValueError(f"unknown method {method_name!r}; choose one of {', '.join(METHODS)}")
    if config is None or isinstance(config, Mapping):
        kind = split.spec.setting if split.spec is not None else None
        config = make_config(method_name, forget_kind=kind, **dict(config or {}))
    elif not isinstance(config, METHODS[method_name].config_class):
        raise ValueError(f"{method_name} needs a {METHODS[method_name].config_class.__name__}, "
                         f"got {type(config).__name__}")
    device = torch.device(device)
    result = METHODS[method_name].unlearn(model, dataset, split, config, device=device, seed=seed,
                                          on_progress=on_progress, should_stop=should_stop)
    evaluation = evaluate(result.model, dataset, split, device=device)
    scores = reference_scores_for(dataset, split, reference, device=device, split_seed=split_seed)
    gap = avg_gap(evaluation.scores(), scores) if scores is not None else None
    record = run_record(result, evaluation, dataset, split, device=device, reference=scores, gap=gap,
                        split_seed=split_seed)
    return RunOutcome(result=result, evaluation=evaluation, reference_scores=scores, avg_gap=gap, run=record)


# --------------------------------------------------------------------------------------------- bench
def run_cell(method: str, model: nn.Module, dataset: ImageDataset, spec, seed: int, reference: dict, *,
             device: torch.device, overrides: Optional[dict] = None, split_seed: int = 0, phi: bool = False) -> dict:
    """One benchmark cell: unlearn ``spec`` with ``method`` and ``seed``; figures, gap and RTE as a flat dict
    (with ``phi``: also φ of each forget example under the unlearned model, for the per-example audit)."""
    from engine.splits import make_split

    split = make_split(dataset, spec, split_seed)
    outcome = run_unlearning(method, model, dataset, split, make_config(method, forget_kind=spec.setting, **(overrides or {})), device=device,
                             seed=seed, reference=reference, split_seed=split_seed)
    row = {"method": method, "forget": spec.to_dict(), "seed": seed, **outcome.evaluation.scores(),
           "forget_test_acc": outcome.evaluation.forget_test_acc, "avg_gap": outcome.avg_gap,
           "seconds": outcome.result.seconds, "config": outcome.result.config}
    if phi:
        from engine.audit_run import phi_on

        ids = torch.as_tensor(split.forget)
        row["phi"] = phi_on(outcome.result.model, dataset.train_images[ids], dataset.train_labels[ids].numpy(),
                            torch.device(device) if isinstance(device, str) else device).astype(np.float32).tolist()
    return row


def bench_table(rows: list[dict], *, device: str, command: str,
                noise_floors: Optional[dict] = None) -> tuple[str, list[dict]]:
    """Markdown table (mean ± std over runs per method × scenario) and the summary rows behind it.

    Avg. Gap is computed per run against that run's own Retrain reference, then averaged. ``noise_floors``
    (scenario → {"mean", "std", ...}: the Avg. Gap between Retrain seeds) adds a line under the table per scenario.
    """
    from engine.metrics import mean_and_std

    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["scenario"], row["method"]), []).append(row)
    summary = []
    lines = [f"Device: {device}  ", f"Command: `{command}`", "",
             "| scenario | method | UA | RA | TA | MIA-Efficacy | Avg. Gap ↓ | RTE (s) | RTE / Retrain | runs |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    retrain_seconds = {scenario: np.mean([r["seconds"] for r in members])
                       for (scenario, method), members in groups.items() if method == "retrain"}
    for (scenario, method), members in groups.items():
        entry = {"scenario": scenario, "method": method, "runs": len(members)}
        cells = []
        for key in (*GAP_KEYS, "avg_gap", "seconds"):
            mean, std = mean_and_std(r[key] for r in members)
            entry[key], entry[f"{key}_std"] = mean, std
            cells.append(f"{mean:.2f} ± {std:.2f}" if key != "seconds" else f"{mean:.1f} ± {std:.1f}")
            if key == "avg_gap" and scenario in (noise_floors or {}):
                cells[-1] += f" (floor {noise_floors[scenario]['mean']:.2f})"
        ratio = entry["seconds"] / retrain_seconds[scenario] if scenario in retrain_seconds else float("nan")
        entry["seconds_vs_retrain"] = ratio
        summary.append(entry)
        label = METHODS[method].label
        lines.append(f"| {scenario} | {label} | " + " | ".join(cells) + f" | {100 * ratio:.1f} % | {len(members)} |")
    for scenario, floor in (noise_floors or {}).items():
        for entry in summary:
            if entry["scenario"] == scenario:
                entry["noise_floor"], entry["noise_floor_std"] = floor["mean"], floor["std"]
        lines.append(f"\nRetrain noise floor, {scenario}: Avg. Gap {floor['mean']:.2f} ± {floor['std']:.2f} between "
                     f"Retrains that differ only in seed ({floor['retrains']} per forget set, {floor['forget_sets']} "
                     "forget set(s)): a gap below it is indistinguishable from Retrain.")
    return "\n".join(lines) + "\n", summary
