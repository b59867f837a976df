"""Draw a side-by-side comparison (`app.comparison.Comparison`) on a page: the side-by-side view and the
tour's last step share it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app import charts, comparison as comparing, pipeline, ui

KEYS = comparing.KEYS


def table(comparison) -> "pd.io.formats.style.Styler":
    """Rows = quantities, columns = runs (+ Retrain); the best run per row highlighted."""
    frame = pd.DataFrame(comparison.values, index=list(comparison.rows), columns=list(comparison.columns))
    marks = pd.DataFrame(comparison.best, index=frame.index, columns=frame.columns)
    return frame.style.format("{:.2f}", na_rep="—").apply(
        lambda column: ["background-color:#d3f9d8;font-weight:bold" if b else "" for b in marks[column.name]])


def deltas(comparison) -> pd.DataFrame:
    runs = list(comparison.columns[1:len(comparison.runs)])
    return pd.DataFrame(comparison.deltas[:, 1:len(comparison.runs)], index=list(comparison.rows), columns=runs)


def render(comparison, class_names, key: str, compact: bool = False) -> None:
    """Everything the comparison holds, in page order; ``compact`` leaves out the gauges grid (the tour)."""
    colours = charts.run_colours(["original", *comparison.columns])
    st.markdown("**Runs:** " + " · ".join(f"<span style='color:{colours[c]}'>■</span> {r.title}"
                                          for c, r in zip(comparison.columns, comparison.runs)), unsafe_allow_html=True)
    st.dataframe(table(comparison), width="stretch", key=f"{key}-table")
    st.caption("Highlighted: the best run per row — closest to Retrain for UA, RA, TA, MIA-Efficacy, separation "
               "and attack AUC (exact unlearning is the target, not the largest number); lowest Avg. Gap, run time "
               "and worst-case score. " + ("" if comparison.reference else
                                           "No Retrain for this forget set yet: UA, RA, TA, MIA are ranked higher = "
                                           "better and Avg. Gap is missing."))
    floor = pipeline.noise_floor(comparison.runs[0].record) if comparison.runs else None
    if floor is not None:
        st.caption(f"Retrain noise floor of this forget set: Avg. Gap **{floor['mean']:.2f}** ± {floor['std']:.2f} "
                   f"between {floor['retrains']} Retrains that differ only in seed — a gap below it is as close as "
                   "another Retrain would be.")
    if len(comparison.runs) > 1:
        st.markdown(f"**Difference to the first run** ({comparison.columns[0]})")
        st.dataframe(deltas(comparison).style.format("{:+.2f}", na_rep="—"), width="stretch", key=f"{key}-deltas")

    st.subheader("The four measures")
    values = {c: [comparison.value(k, c) for k in KEYS] for c in comparison.columns}
    st.plotly_chart(charts.metrics_side_by_side(values, KEYS, colours), key=f"{key}-bars",
                    config={"displayModeBar": False})
    if not compact:
        gauges(comparison, key)
    cols = st.columns(len(comparison.columns))
    for j, column in enumerate(comparison.columns):
        gap, seconds = comparison.value("Avg. Gap", column), comparison.value("Run time (s)", column)
        first_gap = comparison.value("Avg. Gap", comparison.columns[0])
        cols[j].metric(f"Avg. Gap · {column}", "—" if not np.isfinite(gap) else f"{gap:.2f}",
                       delta=None if j == 0 or column == comparing.RETRAIN or not np.isfinite(gap - first_gap)
                       else f"{gap - first_gap:+.2f} vs first", delta_color="inverse")
        cols[j].caption(f"run time {ui.fmt_seconds(seconds if np.isfinite(seconds) else None)}")

    st.subheader("Per-class test accuracy")
    st.plotly_chart(charts.per_class_side_by_side(class_names, comparison.per_class,
                                                  comparison.spec.get("classes") or [], colours),
                    key=f"{key}-per-class")

    st.subheader("Where the forget samples go")
    shared = comparison.shared_map
    if shared is None:
        st.info(comparison.map_note)
    else:
        st.caption("UMAP of penultimate features, every panel in one shared frame (fitted once on the original "
                   "model), so positions compare across runs. Ringed: the forget set. The closer a run's picture "
                   "is to Retrain's, the closer its features are to exact unlearning.")
        ranges = shared.ranges()
        per_row = 4 if compact else min(4, len(shared.panels))
        for start in range(0, len(shared.panels), per_row):
            cols = st.columns(per_row)
            for k in range(start, min(start + per_row, len(shared.panels))):
                panel = shared.panels[k]
                fig = charts.feature_map(shared.coordinates[k], shared.labels, class_names, shared.in_forget,
                                         ids=shared.sample_ids, title=f"{panel} · separation {shared.silhouette[k]:.2f}",
                                         ranges=ranges)
                fig.update_layout(showlegend=False, height=330, title_font_size=12)
                cols[k - start].plotly_chart(fig, key=f"{key}-umap-{k}", config={"displayModeBar": False})

    st.subheader("Privacy")
    if comparison.roc:
        left, right = st.columns(2)
        left.plotly_chart(charts.roc_curves(comparison.roc), key=f"{key}-roc")
        rows = [r for r in comparison.rows if r.startswith(("Attack", "Worst", "MIA"))]
        right.dataframe(pd.DataFrame([[comparison.value(r, c) for c in comparison.columns] for r in rows],
                                     index=rows, columns=list(comparison.columns)).style.format("{:.3f}", na_rep="—"),
                        width="stretch", key=f"{key}-privacy")
        right.caption("Attack AUC: how well a confidence threshold tells forget images from unseen ones (Retrain's "
                      "value is the target). Worst-case score: the best of five attackers telling the run's outputs "
                      "from Retrain's on the forget set (0.5 = it cannot).")
    else:
        st.info("The attack scores need the runs' insights; they appear when those are ready.")


def gauges(comparison, key: str) -> None:
    """The four gauges per run: a column per run (and Retrain), a row per metric."""
    reference = comparison.reference or {}
    for col, column in zip(st.columns(len(comparison.columns)), comparison.columns):
        col.markdown(f"**{column}**")
    for k in KEYS:
        cols = st.columns(len(comparison.columns))
        for j, column in enumerate(comparison.columns):
            run = comparison.runs[j] if j < len(comparison.runs) else None
            value = comparison.value(k, column)
            if not np.isfinite(value):
                cols[j].caption(f"{column}: no {k}")
                continue
            fig = charts.gauge(k, value, reference.get(k) if run else None,
                               (run or comparison.runs[0]).original_metrics.get(k))
            fig.update_layout(height=180)
            if comparison.best[comparison.rows.index(k), j]:
                fig.update_traces(gauge_bordercolor="#2b8a3e", gauge_borderwidth=3)
            cols[j].plotly_chart(fig, key=f"{key}-gauge-{k}-{j}", config={"displayModeBar": False})
    st.caption("Needle: the run · orange mark: Retrain · shaded: the original model · green ring: the best run "
               "on that measure.")
