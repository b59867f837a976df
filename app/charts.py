"""Plotly figures from plain arrays and dicts. No engine, no streamlit: the same figures go into the app
and into the exported HTML report.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import plotly.graph_objects as go

COLORS = {"original": "#8c8c8c", "unlearned": "#1f6feb", "retrain": "#e8590c", "retrained": "#e8590c",
          "forget": "#d6336c", "retain": "#adb5bd", "unseen": "#495057"}
METRIC_HELP = {
    "UA": ("UA · unlearning accuracy", "100 − accuracy on the forget set. Higher = more forgotten. "
           "(Some tools call the forget-set accuracy itself “UA”; here it is 100 minus it.)"),
    "RA": ("RA · retain accuracy", "Accuracy on the data the model keeps. Higher = utility preserved."),
    "TA": ("TA · test accuracy", "Accuracy on unseen test images of the kept classes. Higher = generalisation kept."),
    "MIA": ("MIA-Efficacy", "Share of forget samples a membership-inference attack calls “not in training”. "
            "Higher = more forgotten."),
}
_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), font=dict(size=12), template="plotly_white")


def _indicator(metric: str, value: float, reference: Optional[float], original: Optional[float]) -> dict:
    title = METRIC_HELP.get(metric, (metric, ""))[0]
    indicator = dict(mode="gauge+number", value=float(value), number={"suffix": " %", "valueformat": ".1f"},
                     title={"text": title, "font": {"size": 14}},
                     gauge={"axis": {"range": [0, 100]}, "bar": {"color": COLORS["unlearned"]},
                            "steps": [{"range": [0, 100], "color": "#f1f3f5"}]})
    if reference is not None and np.isfinite(reference):
        indicator["mode"] = "gauge+number+delta"
        indicator["delta"] = {"reference": float(reference), "valueformat": ".1f", "suffix": " vs Retrain",
                              "increasing": {"color": "#495057"}, "decreasing": {"color": "#495057"}}
        indicator["gauge"]["threshold"] = {"line": {"color": COLORS["retrain"], "width": 4}, "thickness": 0.85,
                                           "value": float(reference)}
    if original is not None and np.isfinite(original):
        indicator["gauge"]["steps"] = [{"range": [0, float(original)], "color": "#e9ecef"},
                                       {"range": [float(original), 100], "color": "#f8f9fa"}]
    return indicator


def gauge(metric: str, value: float, reference: Optional[float], original: Optional[float]) -> go.Figure:
    """One metric as a gauge: the needle is the run, the delta is against Retrain, the tick is the original."""
    fig = go.Figure(go.Indicator(**_indicator(metric, value, reference, original)))
    fig.update_layout(height=210, margin=dict(l=25, r=25, t=50, b=5))
    return fig


def gauges(rows: Sequence[tuple[str, float, Optional[float], Optional[float]]]) -> go.Figure:
    """Several gauges side by side in one figure (one chart for the browser to draw instead of one per metric):
    ``rows`` = (metric, value, Retrain's value or None, original's value or None), left to right."""
    fig = go.Figure()
    n = max(1, len(rows))
    for i, (metric, value, reference, original) in enumerate(rows):
        fig.add_trace(go.Indicator(**_indicator(metric, value, reference, original),
                                   domain={"x": [i / n + 0.035, (i + 1) / n - 0.035], "y": [0, 1]}))
    fig.update_layout(height=210, margin=dict(l=25, r=25, t=50, b=5))
    return fig


def per_class_bars(class_names: Sequence[str], series: dict[str, Sequence[float]],
                   forgotten: Sequence[int] = ()) -> go.Figure:
    fig = go.Figure()
    for name, values in series.items():
        fig.add_bar(name=name, x=list(class_names), y=[None if v is None else float(v) for v in values],
                    marker_color=COLORS.get(name.lower().split()[0], None))
    for c in forgotten:
        fig.add_vrect(x0=c - 0.5, x1=c + 0.5, fillcolor=COLORS["forget"], opacity=0.08, line_width=0)
    fig.update_layout(barmode="group", yaxis=dict(title="test accuracy (%)", range=[0, 100]), height=320,
                      legend=dict(orientation="h", y=1.12), **_LAYOUT)
    return fig


def confusion(matrix: np.ndarray, class_names: Sequence[str], title: str = "") -> go.Figure:
    matrix = np.asarray(matrix, dtype=float)
    rows = matrix.sum(1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0) * 100
    fig = go.Figure(go.Heatmap(z=share, x=list(class_names), y=list(class_names), colorscale="Blues", zmin=0,
                               zmax=100, text=matrix.astype(int), texttemplate="%{text}",
                               hovertemplate="true %{y}<br>predicted %{x}<br>%{z:.1f} % of the row<extra></extra>",
                               colorbar=dict(title="%")))
    fig.update_layout(title=title, xaxis_title="predicted", yaxis_title="true", yaxis_autorange="reversed",
                      height=420, **_LAYOUT)
    return fig


def loss_curves(history: list) -> go.Figure:
    """Live losses from the job history: [(elapsed, stage, {metric: value}, epoch), ...]."""
    fig = go.Figure()
    series: dict[str, tuple[list, list]] = {}
    for elapsed, stage, metrics, *_ in history:
        for name, value in metrics.items():
            if "loss" in name or name in ("kl", "contrastive", "ce"):
                xs, ys = series.setdefault(stage if name == "loss" else f"{stage} · {name}", ([], []))
                xs.append(elapsed)
                ys.append(value)
    for name, (xs, ys) in series.items():
        fig.add_scatter(x=xs, y=ys, mode="lines", name=name)
    fig.update_layout(height=260, xaxis_title="seconds", yaxis_title="loss", legend=dict(orientation="h", y=1.2),
                      **_LAYOUT)
    return fig


def layer_heatmap(matrix: np.ndarray, title: str, zmax: Optional[float] = None, colorscale: str = "Viridis") -> go.Figure:
    fig = go.Figure(go.Heatmap(z=matrix, colorscale=colorscale, zmin=0, zmax=zmax,
                               hovertemplate="row %{y}<br>col %{x}<br>%{z:.3g}<extra></extra>"))
    fig.update_layout(title=title, height=280, xaxis=dict(showticklabels=False), yaxis=dict(showticklabels=False),
                      **_LAYOUT)
    return fig


def layer_bars(names: Sequence[str], series: dict[str, Sequence[float]], yaxis: str) -> go.Figure:
    fig = go.Figure()
    for label, values in series.items():
        fig.add_bar(name=label, x=list(names), y=[float(v) for v in values])
    fig.update_layout(barmode="group", height=320, yaxis_title=yaxis, xaxis_tickangle=-35,
                      legend=dict(orientation="h", y=1.15), **_LAYOUT)
    return fig


def feature_map(coords: np.ndarray, labels: np.ndarray, class_names: Sequence[str], highlight: np.ndarray,
                hover: Optional[Sequence[str]] = None, title: str = "", ranges=None, ids=None,
                selectable: bool = False) -> go.Figure:
    """A 2-D scatter coloured by class, forget samples drawn on top in a ring; shared ``ranges`` for panels."""
    fig = go.Figure()
    palette = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c",
               "#ccb974", "#64b5cd"]
    highlight = np.asarray(highlight, dtype=bool)
    ids = np.arange(len(coords)) if ids is None else np.asarray(ids)
    hover = np.asarray(hover if hover is not None else [""] * len(coords), dtype=object)
    for c, name in enumerate(class_names):
        mask = (np.asarray(labels) == c) & ~highlight
        if mask.any():
            fig.add_scattergl(x=coords[mask, 0], y=coords[mask, 1], mode="markers", name=name,
                              marker=dict(size=4, color=palette[c % 10], opacity=0.55),
                              customdata=ids[mask], text=hover[mask],
                              hovertemplate="#%{customdata} %{text}<extra>" + name + "</extra>")
    if highlight.any():
        fig.add_scattergl(x=coords[highlight, 0], y=coords[highlight, 1], mode="markers", name="forget set",
                          marker=dict(size=7, color="rgba(0,0,0,0)", line=dict(color=COLORS["forget"], width=1.6)),
                          customdata=ids[highlight], text=hover[highlight],
                          hovertemplate="#%{customdata} %{text}<extra>forget set</extra>")
    fig.update_layout(title=title, height=440, legend=dict(itemsizing="constant"), dragmode="lasso" if selectable else "zoom",
                      xaxis=dict(showticklabels=False, range=ranges[0] if ranges else None, zeroline=False),
                      yaxis=dict(showticklabels=False, range=ranges[1] if ranges else None, zeroline=False),
                      **_LAYOUT)
    return fig


def roc_curves(curves: dict[str, tuple[np.ndarray, np.ndarray, float]]) -> go.Figure:
    """{name: (false positive rate, true positive rate, AUC)} with the chance diagonal."""
    fig = go.Figure()
    fig.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="#adb5bd"), name="chance")
    for name, (fpr, tpr, auc) in curves.items():
        fig.add_scatter(x=fpr, y=tpr, mode="lines", name=f"{name} (AUC {auc:.2f})",
                        line=dict(color=COLORS.get(name.lower().split()[0])))
    fig.update_layout(height=360, xaxis_title="false positive rate", yaxis_title="true positive rate",
                      xaxis=dict(range=[0, 1]), yaxis=dict(range=[0, 1.02]), **_LAYOUT)
    return fig


def score_histograms(groups: dict[str, np.ndarray], xaxis: str) -> go.Figure:
    fig = go.Figure()
    for name, values in groups.items():
        fig.add_histogram(x=np.asarray(values, dtype=float), name=name, opacity=0.55, histnorm="probability",
                          nbinsx=40, marker_color=COLORS.get(name.lower().split()[0]))
    fig.update_layout(barmode="overlay", height=300, xaxis_title=xaxis, yaxis_title="share",
                      legend=dict(orientation="h", y=1.15), **_LAYOUT)
    return fig


def attribution_row(images: Sequence[np.ndarray], titles: Sequence[str]) -> go.Figure:
    """An input image, then one attribution map per model (each in [0, 1], scaled jointly per image)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=len(images), subplot_titles=list(titles), horizontal_spacing=0.03)
    for k, image in enumerate(images):
        image = np.asarray(image, dtype=float)
        is_input = k == 0
        fig.add_trace(go.Heatmap(z=image, colorscale="gray" if is_input else "Reds", showscale=False,
                                 zmin=None if is_input else 0.0, zmax=None if is_input else 1.0,
                                 hovertemplate="%{z:.2f}<extra></extra>"), row=1, col=k + 1)
        fig.update_yaxes(autorange="reversed", showticklabels=False, showgrid=False, row=1, col=k + 1,
                         scaleanchor=f"x{k + 1 if k else ''}", constrain="domain")
        fig.update_xaxes(showticklabels=False, showgrid=False, constrain="domain", row=1, col=k + 1)
    fig.update_annotations(font_size=12)
    fig.update_layout(height=200, margin=dict(l=5, r=5, t=30, b=5), template="plotly_white")
    return fig


def two_stage_diagram() -> go.Figure:
    """WSS-CL's preparation, its two stages and our closing step as boxes and arrows — drawn with shapes so it also
    goes into the HTML report."""
    fig = go.Figure()
    boxes = [(0.0, "0 · Weight saliency", "which weights carry the forget set?<br>soft weights w ∈ [0, 1]"),
             (1.05, "1 · Forget", "push forget predictions to uniform<br>(KL to the uniform distribution)"),
             (2.1, "2 · Contrastive repair", "forget sample ↔ its own view,<br>away from retained data; then<br>"
                                             "fine-tune on retained data"),
             (3.15, "3 · Forgotten rows", "whole classes only (ours):<br>push their output rows down,<br>"
                                          "as a Retrain's are")]
    for x, head, body in boxes:
        fig.add_shape(type="rect", x0=x, x1=x + 0.9, y0=0, y1=1, line=dict(color="#1f6feb"),
                      fillcolor="#e7f0ff" if x else "#f1f3f5")
        fig.add_annotation(x=x + 0.45, y=0.78, text=f"<b>{head}</b>", showarrow=False,
                           font=dict(size=14, color="#1c2b4a"))
        fig.add_annotation(x=x + 0.45, y=0.38, text=body, showarrow=False, font=dict(size=12, color="#343a40"))
    for x in (0.9, 1.95, 3.0):
        fig.add_annotation(x=x + 0.15, y=0.5, ax=x, ay=0.5, xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=3, arrowwidth=2, arrowcolor="#1f6feb", text="")
    fig.add_annotation(x=2.02, y=-0.15, showarrow=False, font=dict(size=11, color="#495057"),
                       text="every update in stages 1–2 is scaled by w: weights that do not carry the forget set barely move")
    fig.update_layout(height=190, xaxis=dict(visible=False, range=[-0.05, 4.1]),
                      yaxis=dict(visible=False, range=[-0.3, 1.05]), margin=dict(l=0, r=0, t=0, b=0),
                      template="plotly_white")
    return fig


# ---------------------------------------------------------------------------------------------- side by side
RUN_PALETTE = ("#1f6feb", "#2f9e44", "#9c36b5", "#f08c00", "#0c8599", "#c2255c")


def run_colours(columns: Sequence[str]) -> dict[str, str]:
    """One colour per compared run, grey for the original and orange for Retrain, the same in every figure."""
    colours = {"original": COLORS["original"], "Retrain": COLORS["retrain"]}
    runs = [c for c in columns if c not in colours]
    colours.update({c: RUN_PALETTE[k % len(RUN_PALETTE)] for k, c in enumerate(runs)})
    return colours


def metrics_side_by_side(values: dict[str, Sequence[float]], keys: Sequence[str] = ("UA", "RA", "TA", "MIA"),
                         colours: Optional[dict] = None) -> go.Figure:
    """The four metrics as grouped bars, one bar per run (and Retrain), the value written on each bar."""
    colours = colours or run_colours(list(values))
    fig = go.Figure()
    for name, row in values.items():
        numbers = [None if v is None or not np.isfinite(v) else float(v) for v in row]
        fig.add_bar(name=name, x=list(keys), y=numbers, marker_color=colours.get(name),
                    text=[None if v is None else f"{v:.1f}" for v in numbers], textposition="outside")
    fig.update_layout(barmode="group", yaxis=dict(title="%", range=[0, 110]), height=340,
                      legend=dict(orientation="h", y=1.15), **_LAYOUT)
    return fig


def per_class_side_by_side(class_names: Sequence[str], series: dict[str, Sequence[float]],
                           forgotten: Sequence[int] = (), colours: Optional[dict] = None) -> go.Figure:
    """Per-class test accuracy of every compared model in one grouped chart (forgotten classes shaded)."""
    fig = per_class_bars(class_names, series, forgotten)
    colours = colours or run_colours(list(series))
    for trace in fig.data:
        trace.marker.color = colours.get(trace.name, trace.marker.color)
    return fig


def example_populations(groups: dict[str, np.ndarray], marker: float, marker_name: str) -> go.Figure:
    """One forget image's φ under each population (strip of dots + a fitted normal curve per group) and the
    unlearned model's φ as a vertical line: where the line falls says which population the model resembles."""
    fig = go.Figure()
    palette = {"trained on it": "#d6336c", "never trained on it": "#1c7ed6", "Retrain": "#2f9e44",
               "unlearning runs": "#f08c00"}
    values = [np.asarray(v, dtype=float) for v in groups.values() if len(v)] + [np.asarray([marker])]
    low, high = min(float(v.min()) for v in values), max(float(v.max()) for v in values)
    pad = 0.15 * (high - low) + 0.5
    grid = np.linspace(low - pad, high + pad, 200)
    for row, (name, v) in enumerate(groups.items()):
        v = np.asarray(v, dtype=float)
        if not len(v):
            continue
        colour = palette.get(name)
        fig.add_scatter(x=v, y=np.full(len(v), -0.04 * (row + 1)), mode="markers", name=f"{name} ({len(v)} models)",
                        marker=dict(color=colour, size=7, symbol="line-ns-open"), legendgroup=name)
        if len(v) >= 2:
            mu, sd = float(v.mean()), max(float(v.std(ddof=1)), 1e-3)
            density = np.exp(-0.5 * ((grid - mu) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
            fig.add_scatter(x=grid, y=density / density.max(), mode="lines", line=dict(color=colour),
                            showlegend=False, legendgroup=name, hoverinfo="skip")
    fig.add_vline(x=marker, line=dict(color="#212529", width=3, dash="dash"))
    fig.add_annotation(x=marker, y=1.08, text=marker_name, showarrow=False, yref="y")
    fig.update_layout(height=320, xaxis_title="φ = log p(true label) − log(1 − p): higher = more confident",
                      yaxis=dict(visible=False, range=[-0.04 * (len(groups) + 1.5), 1.15]),
                      legend=dict(orientation="h", y=-0.35), **_LAYOUT)
    return fig


def epsilon_histogram(epsilons: np.ndarray, largest_finite: float) -> go.Figure:
    """Per-example ε of the challenge's test, in bins of 0.25 up to the largest measurable ε, and a last bar for
    the images whose unlearned and Retrain populations were fully separated (ε = ∞)."""
    eps = np.asarray(epsilons, dtype=float)
    finite = eps[np.isfinite(eps) & (eps < 50)]
    edges = np.arange(0.0, max(float(largest_finite), 0.25) + 0.25, 0.25)
    counts, _ = np.histogram(np.clip(finite, 0, edges[-1] - 1e-9), bins=edges)
    labels = [f"{a:.2f}–{b:.2f}" for a, b in zip(edges[:-1], edges[1:])] + ["∞ (separated)"]
    colours = ["#1c7ed6"] * len(counts) + ["#c92a2a"]
    fig = go.Figure()
    fig.add_bar(x=labels, y=[*counts.tolist(), int(len(eps) - len(finite))], marker_color=colours)
    fig.update_layout(height=300, xaxis_title="ε per forget image (0 = indistinguishable from Retrain)",
                      yaxis_title="forget images", bargap=0.1, xaxis=dict(type="category"), showlegend=False,
                      **_LAYOUT)
    return fig
