"""Two or more runs on one forget set, side by side: plain values for the page, the tour and the HTML export.

Runs are read through one adapter, `run_view`, so a change of the run record's shape is one edit here. Nothing
here draws or touches streamlit; `app/comparison_view.py` draws, `app/report.py` exports.

"Best" per row: for UA, RA, TA, MIA-Efficacy and the feature-space separation, the value closest to Retrain's
(exact unlearning is the target, not the largest number); without Retrain, the highest of the four metrics. For
Avg. Gap and run time the lowest; for the attack AUC the closest to Retrain's (else to chance, 0.5); for the
worst-case score the lowest (0.5 = indistinguishable from Retrain).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

import engine

KEYS = ("UA", "RA", "TA", "MIA")
RETRAIN = "Retrain"


@dataclass(frozen=True)
class RunView:
    """What a comparison needs of one run record."""

    id: str
    label: str                 # the method's display name
    method: str
    created: str               # ISO time (UTC)
    spec: dict
    spec_text: str
    seed: int
    seconds: Optional[float]
    metrics: dict              # UA, RA, TA, MIA, per_class_test_acc, ...
    original_metrics: dict
    reference_metrics: Optional[dict]
    avg_gap: Optional[float]
    path: str
    insights_ready: bool
    record: dict               # the record itself, for the insight loaders (pipeline.load_insights)

    @property
    def forget_spec(self) -> Optional[engine.ForgetSpec]:
        return engine.ForgetSpec.from_dict(self.spec) if self.spec else None

    @property
    def spec_key(self) -> str:
        return engine.ForgetSpec.from_dict(self.spec).key() if self.spec else ""

    @property
    def title(self) -> str:
        return f"{self.label} · {self.spec_text} · {self.created[11:19]} UTC"


def run_view(record: dict) -> RunView:
    """The one place that reads a run record (dict as listed by `store.list_runs`)."""
    spec = record.get("spec") or record.get("forget") or {}
    return RunView(id=record["id"], label=str(record.get("label") or record.get("method")),
                   method=str(record.get("method")), created=str(record.get("created") or ""), spec=dict(spec),
                   spec_text=str(record.get("spec_text") or ""), seed=int(record.get("seed") or 0),
                   seconds=record.get("seconds"), metrics=dict(record.get("metrics") or {}),
                   original_metrics=dict(record.get("original_metrics") or {}),
                   reference_metrics=record.get("reference_metrics"), avg_gap=record.get("avg_gap"),
                   path=str(record.get("path")), insights_ready=record.get("insights") == "ready", record=record)


@dataclass(frozen=True, eq=False)
class SharedMap:
    """UMAP panels of every run in one frame: the original once, each run's unlearned model, Retrain once."""

    panels: tuple[str, ...]          # column names: "original", run columns..., "Retrain"
    coordinates: np.ndarray          # (K, P, 2)
    labels: np.ndarray               # (P,)
    in_forget: np.ndarray            # (P,) bool
    sample_ids: np.ndarray           # (P,)
    silhouette: tuple[float, ...]    # (K,) forget vs retain separation in each model's own feature space

    def ranges(self, pad: float = 0.05):
        low, high = self.coordinates.min((0, 1)), self.coordinates.max((0, 1))
        margin = pad * (high - low)
        return [(low[0] - margin[0], high[0] + margin[0]), (low[1] - margin[1], high[1] + margin[1])]


@dataclass(frozen=True, eq=False)
class Comparison:
    runs: tuple[RunView, ...]
    columns: tuple[str, ...]          # one per run, then "Retrain" when its reference exists
    rows: tuple[str, ...]             # the quantities compared
    values: np.ndarray                # (rows, columns) float, NaN = not available
    best: np.ndarray                  # (rows, columns) bool: the best run(s) per row (never the Retrain column)
    deltas: np.ndarray                # (rows, columns) value − the first run's value (NaN for the first, Retrain)
    reference: Optional[dict]         # Retrain's metrics
    per_class: dict                   # {column or "original": per-class test accuracy}
    shared_map: Optional[SharedMap]
    map_note: str                     # why there is no shared map, when there is none
    roc: dict                         # {column: (fpr, tpr, auc)} forget set vs unseen, confidence score
    spec: dict
    spec_text: str

    def value(self, row: str, column: str) -> float:
        return float(self.values[self.rows.index(row), self.columns.index(column)])


ROWS = ("UA", "RA", "TA", "MIA", "Avg. Gap", "Run time (s)", "Separation (silhouette)",
        "Attack AUC (forget vs unseen)", "Worst-case score")
ROW_HELP = {"UA": "100 − forget accuracy (%)", "RA": "retain accuracy (%)", "TA": "test accuracy (%)",
            "MIA": "MIA-Efficacy (%)", "Avg. Gap": "mean |run − Retrain| over UA, RA, TA, MIA (lower = closer)",
            "Run time (s)": "wall-clock of the unlearning",
            "Separation (silhouette)": "forget vs retained in the model's feature space; Retrain's is the target",
            "Attack AUC (forget vs unseen)": "confidence-score attack; Retrain's is the target (0.5 = chance)",
            "Worst-case score": "best attacker telling the run from Retrain on the forget set (0.5 = cannot)"}


def column_names(runs) -> tuple[str, ...]:
    """Short, unique column names: the method and the start time (the forget set is shared)."""
    names = []
    for run in runs:
        name = f"{run.label} · {run.created[11:19]}"
        while name in names:
            name += f" ({run.id.split('/')[-1][-6:]})"
        names.append(name)
    return tuple(names)


def compare(records, *, load_insights: Callable, reference: Optional[dict] = None,
            retrain_seconds: Optional[float] = None) -> Comparison:
    """Assemble the comparison of ``records`` (run record dicts, first = the baseline of the deltas).

    Args:
        load_insights: record -> `engine.Insights` or None (e.g. `pipeline.load_insights`).
        reference: Retrain's metrics when the records do not carry them (a reference computed since).
    Raises:
        ValueError: fewer than two runs, or runs on different forget sets.
    """
    runs = tuple(run_view(r) for r in records)
    if len(runs) < 2:
        raise ValueError("pick at least two finished runs to compare")
    if len({r.spec_key for r in runs}) > 1:
        sets = sorted({r.spec_text for r in runs})
        raise ValueError(f"the runs forget different sets ({'; '.join(sets)}): pick runs on one forget set")
    reference = next((r.reference_metrics for r in runs if r.reference_metrics), None) or reference
    columns = column_names(runs) + ((RETRAIN,) if reference else ())
    insights = [load_insights(r.record) if r.insights_ready else None for r in runs]
    values = np.full((len(ROWS), len(columns)), np.nan)
    for j, run in enumerate(runs):
        for i, key in enumerate(KEYS):
            values[i, j] = _number(run.metrics.get(key))
        values[4, j] = np.mean([abs(values[i, j] - float(reference[k])) for i, k in enumerate(KEYS)]) \
            if reference else np.nan
        values[5, j] = _number(run.seconds)
    if reference:
        r = len(runs)
        values[:4, r] = [float(reference[k]) for k in KEYS]
        values[4, r] = 0.0
        values[5, r] = _number(retrain_seconds)
    shared_map, map_note = _shared_map(runs, columns, insights)
    roc = {}
    for j, found in enumerate(insights):
        if found is None:
            continue
        privacy, space = found.privacy, found.features
        s = list(privacy.scores).index("confidence") if "confidence" in privacy.scores else 0
        for model, column in (("unlearned", columns[j]), ("retrained", RETRAIN)):
            if model in privacy.models and column in columns and column not in roc:
                m = list(privacy.models).index(model)
                roc[column] = (privacy.fpr, privacy.tpr[m, 0, s], float(privacy.auc[m, 0, s]))
                values[7, columns.index(column)] = float(privacy.auc[m, 0, s])
            if model in space.models and column in columns:
                values[6, columns.index(column)] = float(space.silhouette[list(space.models).index(model)])
        values[8, j] = _number(privacy.worst_case_auc)
    best = _best(values, len(runs), has_reference=bool(reference))
    deltas = np.full_like(values, np.nan)
    deltas[:, 1:len(runs)] = values[:, 1:len(runs)] - values[:, :1]
    first = runs[0]
    per_class = {"original": first.original_metrics.get("per_class_test_acc")}
    per_class.update({c: r.metrics.get("per_class_test_acc") for c, r in zip(columns, runs)})
    if reference and reference.get("per_class_test_acc"):
        per_class[RETRAIN] = reference["per_class_test_acc"]
    per_class = {k: v for k, v in per_class.items() if v}
    return Comparison(runs=runs, columns=columns, rows=ROWS, values=values, best=best, deltas=deltas,
                      reference=reference, per_class=per_class, shared_map=shared_map, map_note=map_note, roc=roc,
                      spec=first.spec, spec_text=first.spec_text)


def _number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _best(values: np.ndarray, n_runs: int, has_reference: bool) -> np.ndarray:
    """Mark the best run(s) per row (ties all marked); rows with fewer than two values are not marked."""
    best = np.zeros(values.shape, bool)
    target_column = n_runs if has_reference else None
    for i, row in enumerate(ROWS):
        runs = values[i, :n_runs]
        if np.isfinite(runs).sum() < 2:
            continue
        if row in ("Avg. Gap", "Run time (s)", "Worst-case score"):
            score = runs
        elif target_column is not None and np.isfinite(values[i, target_column]):
            score = np.abs(runs - values[i, target_column])
        elif row in KEYS:
            score = -runs
        elif row.startswith("Attack AUC"):
            score = np.abs(runs - 0.5)
        else:
            continue
        score = np.where(np.isfinite(score), score, np.inf)
        best[i, :n_runs] = np.isclose(score, score.min(), rtol=0, atol=1e-9)
    return best


def _shared_map(runs, columns, insights) -> tuple[Optional[SharedMap], str]:
    """One frame when every run's insights sampled the same points and placed the original identically (same
    original model, seed and forget set: the UMAP is fitted once, on the original's features)."""
    found = [(c, i) for c, i in zip(columns, insights) if i is not None]
    if len(found) < 2:
        return None, "The feature-space panels need the insights of at least two of the runs."
    first = found[0][1].features
    base = list(first.models).index("original")
    for _, other in found[1:]:
        space = other.features
        if not np.array_equal(space.sample_ids, first.sample_ids) or not np.allclose(
                space.coordinates[list(space.models).index("original")], first.coordinates[base], atol=1e-4):
            return None, ("These runs' feature maps are not in one frame (different seeds or original models), "
                          "so their panels cannot be compared point by point.")
    panels, coordinates, silhouette = ["original"], [first.coordinates[base]], [float(first.silhouette[base])]
    for column, found_insights in found:
        space = found_insights.features
        k = list(space.models).index("unlearned")
        panels.append(column)
        coordinates.append(space.coordinates[k])
        silhouette.append(float(space.silhouette[k]))
    with_retrain = next((i.features for _, i in found if "retrained" in i.features.models), None)
    if with_retrain is not None:
        k = list(with_retrain.models).index("retrained")
        panels.append(RETRAIN)
        coordinates.append(with_retrain.coordinates[k])
        silhouette.append(float(with_retrain.silhouette[k]))
    return SharedMap(panels=tuple(panels), coordinates=np.stack(coordinates), labels=first.labels,
                     in_forget=first.in_forget, sample_ids=first.sample_ids, silhouette=tuple(silhouette)), ""


def comparable(records) -> dict[str, list[dict]]:
    """Finished records grouped by forget set (spec key), only the sets with at least two runs."""
    groups: dict[str, list[dict]] = {}
    for record in records:
        if record.get("status") == "finished":
            groups.setdefault(run_view(record).spec_key, []).append(record)
    return {k: v for k, v in groups.items() if len(v) >= 2}
