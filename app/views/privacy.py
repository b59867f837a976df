"""Privacy: can an attacker still tell the forget set was in training? ROC curves, AUCs, worst-case score."""
import numpy as np
import pandas as pd
import streamlit as st

from app import charts, pipeline, ui
from app.views._insights import run_and_insights

st.title("Privacy")
run, insights = run_and_insights("privacy")
privacy = insights.privacy
models = list(privacy.models)
scores = list(privacy.scores)

c = st.columns(3)
c[0].metric("MIA-Efficacy", f"{run['metrics']['MIA']:.1f} %",
            help="Share of forget samples the SVM attack calls “not in training”. Higher = more forgotten.")
c[1].metric("Worst-case score", ui.fmt(privacy.worst_case_auc, 3),
            help="How well the strongest simple attacker tells this model's outputs on the forget set from "
                 "Retrain's: 0.5 = indistinguishable from exact unlearning, 1 = fully distinguishable.")
c[2].metric("Strongest attacker", privacy.worst_case_attack.replace("_", " ") if privacy.worst_case_attack else "—")
st.caption("**MIA-Efficacy**: does the attack believe the forget set was never seen? "
           "**ROC / AUC**: how well a threshold on one score separates forget samples from unseen test images "
           "(0.5 = chance, like Retrain should be). **Worst-case score**: can anyone tell the unlearned model from "
           "Retrain on the forget set (0.5 = no)?")

score = st.segmented_control("Attack score", scores, default="confidence" if "confidence" in scores else scores[0],
                             key="attack-score", format_func=lambda s: s.replace("_", " ")) or scores[0]
s = scores.index(score)
comparison = st.radio("Members", range(len(privacy.comparisons)), horizontal=True, key="members",
                      format_func=lambda i: {"forget_vs_test": f"forget set vs {privacy.forget_nonmembers}",
                                             "retain_vs_test": "retained data vs test images"}.get(
                                                 privacy.comparisons[i], privacy.comparisons[i]))
curves = {name: (privacy.fpr, privacy.tpr[m, comparison, s], float(privacy.auc[m, comparison, s]))
          for m, name in enumerate(models)}
distributions = pipeline.load_score_distributions(run)
if distributions:
    st.markdown(f"**Score distributions** ({score.replace('_', ' ')}; higher = more member-like) — forget samples vs "
                f"{privacy.forget_nonmembers}. Where the two overlap, an attacker cannot tell them apart.")
    panels = st.columns(len(models))
    for k, name in enumerate(models):
        forget = distributions.get(f"{name}/forget/{score}")
        unseen = distributions.get(f"{name}/unseen/{score}")
        if forget is not None and unseen is not None:
            fig = charts.score_histograms({"forget set": forget, "unseen": unseen}, score.replace("_", " "))
            fig.update_layout(title=name, height=260, showlegend=k == 0)
            panels[k].plotly_chart(fig, key=f"hist-{name}")
left, right = st.columns(2)
with left:
    st.markdown("**ROC curves**")
    st.plotly_chart(charts.roc_curves(curves), key="roc")
with right:
    st.markdown("**AUC per attack score** (0.5 = attacker at chance)")
    table = pd.DataFrame(privacy.auc[:, comparison, :], index=models, columns=[x.replace("_", " ") for x in scores])
    st.dataframe(table.style.format("{:.3f}"),
                 width="stretch")
    st.markdown("**TPR at 1 % false positives** (the low-error regime)")
    st.dataframe(pd.DataFrame(privacy.tpr_at_1pct_fpr[:, comparison, :], index=models,
                              columns=[x.replace("_", " ") for x in scores]).style.format("{:.3f}"), width="stretch")
if len(privacy.distinguish_attacks) and not np.all(np.isnan(privacy.distinguish_auc)):
    st.markdown("**Unlearned vs Retrain on the forget set** — direction-free AUC per attacker")
    st.plotly_chart(charts.layer_bars(list(privacy.distinguish_attacks), {"AUC": privacy.distinguish_auc},
                                      "AUC (0.5 = indistinguishable)"), key="distinguish")
else:
    st.info("The worst-case score needs Retrain for this forget set; it appears once the reference exists.")
