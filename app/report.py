"""Export a run: its record as JSON, and a self-contained HTML report (plotly figures inline, no network)."""
from __future__ import annotations

import html
import json

import numpy as np

import engine
from app import charts, pipeline

KEYS = engine.GAP_KEYS


def run_json(run: dict) -> str:
    """The run record as written on disk (plus the Retrain metrics it was compared with)."""
    stored = {k: v for k, v in run.items() if k not in ("path", "id", "spec")}     # what pages add to a record
    return json.dumps(stored, indent=2, default=engine.json_default, allow_nan=True)


def figures(run: dict, class_names, insights=None) -> list[tuple[str, object]]:
    """(title, figure) pairs for the report, from the record and (optionally) the run's insights."""
    metrics, original = run["metrics"], run.get("original_metrics") or {}
    reference = run.get("reference_metrics") or {}
    out = [(f"{k}", charts.gauge(k, metrics[k], reference.get(k), original.get(k))) for k in KEYS]
    series = {"original": original.get("per_class_test_acc") or [None] * len(class_names),
              "unlearned": metrics["per_class_test_acc"]}
    if reference.get("per_class_test_acc"):
        series["retrain"] = reference["per_class_test_acc"]
    forget = run.get("forget") or {}
    out.append(("Per-class test accuracy", charts.per_class_bars(class_names, series, forget.get("classes") or [])))
    out.append(("Confusion matrix (unlearned, test set)", charts.confusion(np.asarray(metrics["confusion"]), class_names)))
    if insights is not None:
        maps = insights.weights
        out.append(("Per-layer saliency and movement", charts.layer_bars(
            list(maps.names), {"share in hard mask": maps.selected * 100,
                               "relative movement ×100": maps.relative_delta * 100}, "percent")))
        space = insights.features
        coords = space.coordinates
        pad = 0.05 * (coords.max((0, 1)) - coords.min((0, 1)))
        ranges = [(coords[..., 0].min() - pad[0], coords[..., 0].max() + pad[0]),
                  (coords[..., 1].min() - pad[1], coords[..., 1].max() + pad[1])]
        for k, name in enumerate(space.models):
            out.append((f"UMAP · {name} (separation {space.silhouette[k]:.2f})",
                        charts.feature_map(coords[k], space.labels, class_names, space.in_forget,
                                           ids=space.sample_ids, ranges=ranges)))
        privacy = insights.privacy
        s = list(privacy.scores).index("confidence") if "confidence" in privacy.scores else 0
        out.append((f"Attack ROC, forget set vs test (confidence score); worst-case score "
                    f"{privacy.worst_case_auc:.3f}",
                    charts.roc_curves({m: (privacy.fpr, privacy.tpr[i, 0, s], float(privacy.auc[i, 0, s]))
                                       for i, m in enumerate(privacy.models)})))
    return out


def run_html(run: dict, class_names, insights=None) -> str:
    """A standalone HTML page: summary table, then every figure (plotly.js embedded once)."""
    metrics, reference = run["metrics"], run.get("reference_metrics") or {}
    original = run.get("original_metrics") or {}
    rows = "".join(
        f"<tr><td>{k}</td><td>{original.get(k, float('nan')):.2f}</td><td>{metrics[k]:.2f}</td>"
        f"<td>{reference.get(k, float('nan')):.2f}</td></tr>" for k in KEYS)
    gap = run.get("avg_gap")
    floor = pipeline.noise_floor(run)
    floor_text = "" if floor is None else f" (Retrain noise floor {floor['mean']:.2f} ± {floor['std']:.2f})"
    parts = []
    for i, (title, fig) in enumerate(figures(run, class_names, insights)):
        parts.append(f"<section><h3>{html.escape(title)}</h3>"
                     + fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False,
                                   config={"displayModeBar": False}) + "</section>")
    config = html.escape(json.dumps(run.get("config"), indent=1))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Unlearning Lab · {html.escape(run.get('label', ''))}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#212529}}
table{{border-collapse:collapse}}td,th{{border:1px solid #dee2e6;padding:4px 10px;text-align:right}}
section{{display:inline-block;width:49%;vertical-align:top}}pre{{background:#f8f9fa;padding:8px}}</style></head><body>
<h1>Unlearning Lab — {html.escape(run.get('label', run.get('method', '')))} on {html.escape(run.get('spec_text', ''))}</h1>
<p>Dataset {html.escape(str(run.get('dataset')))} · device {html.escape(str(run.get('device')))} · seed {run.get('seed')}
· run time {run.get('seconds', 0):.1f} s · Avg. Gap to Retrain {'—' if gap is None else f'{gap:.2f}'}{floor_text}
· created {html.escape(str(run.get('created')))}</p>
<table><tr><th>metric (%)</th><th>original</th><th>unlearned</th><th>Retrain</th></tr>{rows}</table>
<p><small>UA = 100 − forget accuracy (higher = more forgotten); MIA = MIA-Efficacy (higher = more forgotten).</small></p>
<h3>Configuration</h3><pre>{config}</pre>
{''.join(parts)}
</body></html>"""


# ---------------------------------------------------------------------------------------------- comparison
def comparison_figures(comparison, class_names) -> list[tuple[str, object]]:
    """(title, figure) pairs of a side-by-side comparison (`app.comparison.Comparison`)."""
    colours = charts.run_colours(["original", *comparison.columns])
    values = {c: [comparison.value(k, c) for k in KEYS] for c in comparison.columns}
    out = [("UA, RA, TA, MIA-Efficacy per run", charts.metrics_side_by_side(values, KEYS, colours))]
    for column in comparison.columns:
        run = next((r for r, c in zip(comparison.runs, comparison.columns) if c == column), None)
        original = run.original_metrics if run else {}
        for k in KEYS:
            value = comparison.value(k, column)
            out.append((f"{column} · {k}", charts.gauge(k, value, None if column == "Retrain" else
                                                        (comparison.reference or {}).get(k), original.get(k))))
    out.append(("Per-class test accuracy", charts.per_class_side_by_side(
        class_names, comparison.per_class, comparison.spec.get("classes") or [], colours)))
    shared = comparison.shared_map
    if shared is not None:
        ranges = shared.ranges()
        for k, panel in enumerate(shared.panels):
            out.append((f"UMAP · {panel} (separation {shared.silhouette[k]:.2f}), one shared frame",
                        charts.feature_map(shared.coordinates[k], shared.labels, class_names, shared.in_forget,
                                           ids=shared.sample_ids, ranges=ranges)))
    if comparison.roc:
        out.append(("Attack ROC, forget set vs unseen (confidence score)", charts.roc_curves(comparison.roc)))
    return out


def comparison_table_html(comparison) -> str:
    """The comparison table: best run per row in bold green (★), deltas against the first run in grey."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in comparison.columns)
    body = []
    for i, row in enumerate(comparison.rows):
        cells = []
        for j, _ in enumerate(comparison.columns):
            value, delta = comparison.values[i, j], comparison.deltas[i, j]
            text = "—" if not np.isfinite(value) else f"{value:.2f}"
            if np.isfinite(delta):
                text += f" <small style='color:#868e96'>({delta:+.2f})</small>"
            if comparison.best[i, j]:
                text = f"<b style='color:#2b8a3e'>{text} ★</b>"
            cells.append(f"<td>{text}</td>")
        body.append(f"<tr><td style='text-align:left'>{html.escape(row)}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>quantity</th>{head}</tr>{''.join(body)}</table>"


def comparison_html(comparison, class_names) -> str:
    """One standalone HTML page for a comparison: the table, then every figure (plotly.js embedded once)."""
    parts = []
    for i, (title, fig) in enumerate(comparison_figures(comparison, class_names)):
        parts.append(f"<section><h3>{html.escape(title)}</h3>"
                     + fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False,
                                   config={"displayModeBar": False}) + "</section>")
    runs = "".join(f"<li>{html.escape(r.title)} · seed {r.seed} · config "
                   f"<code>{html.escape(json.dumps(r.record.get('config'), default=str))}</code></li>"
                   for r in comparison.runs)
    note = f"<p><i>{html.escape(comparison.map_note)}</i></p>" if comparison.map_note else ""
    floor = pipeline.noise_floor(comparison.runs[0].record) if comparison.runs else None
    if floor is not None:
        note += (f"<p><small>Retrain noise floor of this forget set: Avg. Gap {floor['mean']:.2f} ± {floor['std']:.2f} "
                 f"between {floor['retrains']} Retrains that differ only in seed.</small></p>")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Unlearning Lab · side by side · {html.escape(comparison.spec_text)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#212529}}
table{{border-collapse:collapse}}td,th{{border:1px solid #dee2e6;padding:4px 10px;text-align:right}}
section{{display:inline-block;width:49%;vertical-align:top}}code{{font-size:80%}}</style></head><body>
<h1>Unlearning Lab — side by side on {html.escape(comparison.spec_text)}</h1>
<ul>{runs}</ul>
{comparison_table_html(comparison)}
<p><small>★ best run per row: closest to Retrain for UA, RA, TA, MIA-Efficacy, separation and attack AUC; lowest
Avg. Gap, run time and worst-case score. In brackets: the difference to the first run. UA = 100 − forget accuracy
and MIA-Efficacy: higher = more forgotten.</small></p>{note}
{''.join(parts)}
</body></html>"""
