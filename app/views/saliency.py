"""Weight saliency: which weights carry the forget set (soft and hard), how much each layer moved, and how
specific that is to this forget set (compared with another one)."""
import numpy as np
import streamlit as st

from app import charts
from app.views._insights import run_and_insights

st.title("Weight saliency")
st.markdown("Saliency = how strongly each weight's gradient responds to the forget set. WSS-CL scales every "
            "update by a **soft** weight w = min(1, s/γ); SalUn uses the **hard** mask (top 50 %). "
            "Bright = allowed to move.")
run, insights = run_and_insights("saliency")
maps = insights.weights
names = list(maps.names)

st.subheader("Per layer")
summary = {"share in hard mask": maps.selected * 100, "mean soft weight ×100": maps.mean_soft * 100,
           "relative movement ‖Δθ‖/‖θ‖ ×100": maps.relative_delta * 100}
st.plotly_chart(charts.layer_bars(names, summary, "percent"), key="layer-bars")
st.caption("Movement is what unlearning actually changed; with soft guidance it follows saliency, so layers "
           "that do not carry the forget set stay nearly untouched.")

layer = st.selectbox("Layer", range(len(names)), format_func=lambda i: f"{names[i]}  {tuple(maps.shapes[i])}",
                     index=int(np.argmax(maps.size)), key="layer")
factor = maps.factors[layer]
if tuple(factor) != (1, 1):
    st.caption(f"Shown block-averaged by {factor[0]}×{factor[1]}: a hard-mask cell is the share of selected weights.")
c = st.columns(3)
c[0].plotly_chart(charts.layer_heatmap(maps.soft[layer], "soft guidance w", 1.0), key="soft")
c[1].plotly_chart(charts.layer_heatmap(maps.hard[layer], "hard mask (SalUn)", 1.0, "gray"), key="hard")
c[2].plotly_chart(charts.layer_heatmap(maps.delta[layer], "movement |Δθ|", None, "Magma"), key="delta")

if maps.compare_description and len(maps.compare_hard):
    st.subheader(f"Another forget set: {maps.compare_description}")
    st.markdown(f"Are the salient weights specific to *{maps.forget_description}*? Jaccard overlap of the two hard "
                f"masks in this layer: **{maps.jaccard[layer]:.2f}** (1 = the same weights, 0 = disjoint).")
    d = st.columns(2)
    d[0].plotly_chart(charts.layer_heatmap(maps.compare_hard[layer], f"hard mask · {maps.compare_description}", 1.0,
                                           "gray"), key="compare")
    diff = charts.layer_heatmap(maps.difference[layer], "this set − other set", None, "RdBu_r")
    diff.update_traces(zmin=-1, zmax=1, zmid=0)
    d[1].plotly_chart(diff, key="difference")
    st.plotly_chart(charts.layer_bars(names, {"Jaccard overlap": maps.jaccard}, "overlap (0–1)"), key="jaccard")
