"""Per-example audit: can an attacker single out individual forgotten images? (engine.audit_live, docs/audit.md)"""
import os

import numpy as np
import streamlit as st

from app import charts, pipeline, resources, state, ui
from app.views._insights import run_and_insights

st.title("Per-example audit")
st.caption("Is *each* forgotten image really gone? An attacker who can train models like ours compares this "
           "model's confidence on one image with models that trained on it and models that never saw it "
           "(LiRA, Carlini et al. 2022; the NeurIPS 2023 unlearning challenge's per-example test).")
run, _ = run_and_insights("audit")
names = resources.dataset().classes
loaded = pipeline.load_audit(run)
pending = pipeline.pending_audit(run)
writable = os.access(run["path"], os.W_OK)      # prepared runs (the tour's, the classroom's) are read-only


def offer_deep(label: str) -> None:
    """The deep audit's button with its cost; a job with progress and Cancel (the panel above) when pressed."""
    if not writable:
        st.caption("This is a prepared run (read-only): start the same run yourself to audit it further.")
        return
    if pending is not None:
        st.info("The deep audit is running — its progress and Cancel are above; results appear here when it ends.")
        return
    try:
        cost = pipeline.audit_cost(run)
    except Exception as error:  # noqa: BLE001 — e.g. a run of a method config the engine no longer accepts
        st.warning(f"This run cannot be audited further ({type(error).__name__}: {error}).")
        return
    parts = [f"{cost['runs'] - 1} more runs of this method and config (seeds {run['seed'] + 1}–"
             f"{run['seed'] + cost['runs'] - 1})"]
    if not cost["has_population"]:
        parts.append(f"{cost['population_size']} Retrains of this forget set (none is shipped for it)")
    st.markdown(f"**{label}** needs " + " and ".join(parts) + f": about **{ui.fmt_seconds(cost['seconds'])}** "
                "on this device, in the background.")
    if st.button(label, key="deep-audit", type="primary"):
        try:
            pipeline.submit_audit(state.session_id(), run)
        except Exception as error:  # noqa: BLE001 — QueueFull and friends: say why, lose nothing
            st.error(str(error))
        else:
            st.rerun()


if loaded is None:
    st.info("This run has no per-example audit yet (it finished before the audit was part of the insights).")
    offer_deep("Audit this run")
    st.stop()
figures, arrays = loaded
if figures.get("error"):
    st.error(f"The audit could not be computed for this run: {figures['error']}")
    st.stop()

deep = figures.get("deep") or {}
headline = figures.get("headline", "lira" if figures.get("lira") else None)
lira = figures.get(headline) if headline else None           # the test that answers this forget set's question
prefix = "lira" if headline == "lira" else "offline"
forget_ids = arrays["forget_ids"]
n = len(forget_ids)

# ------------------------------------------------------------------------------------------------ the verdict
c = st.columns(4)
quality = deep.get("forgetting_quality")
ceiling = (deep.get("forgetting_quality_ceiling") or {}).get("sigma1.0")
c[0].metric("Forgetting quality", ui.fmt(quality, 2) if quality is not None else "—",
            help="The NeurIPS 2023 challenge's score: per image, can any threshold tell N unlearning runs from N "
                 "Retrains? 2^-bucket(ε) averaged, × the RA and TA ratios. 0 = every image singled out. With "
                 "N models a perfect unlearner scores well below 1 (docs/audit.md): compare with the ceiling.")
c[1].metric("Attacker AUC (LiRA)", ui.fmt(lira["auc"], 3) if lira else "—",
            help="Over all forget images: 0.5 = this model looks like one that never trained on them; 1 = every "
                 "image is singled out; below 0.5 = *less* confident than such models (over-forgetting, itself a "
                 "trace). Whole classes: against Retrains of the set; images: against shadow models, half of which "
                 "trained on each image.")
c[2].metric("TPR at 1 % FPR", ui.fmt(lira["tpr_at_1pct_fpr"], 3) if lira and lira["tpr_at_1pct_fpr"] is not None
            else "—", help="Share of forget images the attacker flags while wrongly flagging 1 % of never-seen ones "
                           "(≈ 0.01 = chance).")
floor = figures.get("noise_floor")
c[3].metric("Retrain noise floor", ui.fmt(floor, 2) if floor is not None else "—",
            help="Avg. Gap between Retrains that differ only in their seed: a gap below this is indistinguishable "
                 "from exact unlearning.")

if lira:
    statistic_all = arrays[f"{prefix}_statistic"]
    usable = ~arrays[f"{prefix}_skipped"]
    flagged = int(np.sum(statistic_all[usable] > 0))
    sentence = (f"Against {lira['against']}, the attacker's AUC is **{lira['auc']:.2f}** (0.5 = no better than a "
                f"coin). {flagged} of {n} forget images look more like *trained on* than *never seen* to it")
    if lira["auc"] < 0.4:
        sentence += (" — and an AUC this far *below* 0.5 is a trace too: the model is less confident on these images "
                     "than models that never saw them (over-forgetting)")
    if quality is not None:
        sentence += (f"; forgetting quality **{quality:.2f}** over {deep['runs']} runs vs {deep['population_size']} "
                     f"Retrains" + (f" (a perfect unlearner scores about {ceiling:.2f} at this N)" if ceiling else ""))
    st.markdown(sentence + ".")
    if "retrain_phi" in arrays:
        mine, theirs = float(np.median(arrays["phi"])), float(np.median(arrays["retrain_phi"]))
        to_p = lambda phi: 100.0 / (1.0 + np.exp(-phi))                       # noqa: E731 — φ → p(true label) %
        st.markdown(f"Confidence in the true label, median over the forget images: **{to_p(mine):.2g} %** under this "
                    f"run, **{to_p(theirs):.2g} %** under the Retrains"
                    + (f" — both far below what it takes to be predicted, so UA ({run['metrics']['UA']:.1f}) cannot "
                       "see the difference; the per-image test can." if abs(mine - theirs) > 2
                       and run["metrics"].get("UA", 0) > 95 else "."))
    other = figures.get("lira") if headline == "offline" else figures.get("offline")
    if other:
        st.caption(f"The other test, against {other['against']}: AUC {other['auc']:.2f}."
                   + (" For a whole class the shadows are not the right comparison: each one that left an image out "
                      "still learned its class." if headline == "offline" else ""))
    elif pipeline.forget_spec(run).kind == "class":
        st.caption("No Retrain population for this class set yet: the shadows that left an image out still learned "
                   "its class, so read this AUC with care; the deep audit builds the Retrains.")
else:
    st.warning(f"No shadow population matches this model ({figures.get('lira_note', '')}); the per-image test "
               "needs one.")
if figures.get("avg_gap_to_population") is not None:
    st.caption(f"Avg. Gap to the mean of {figures['population']['size']} Retrains: "
               f"**{figures['avg_gap_to_population']:.2f}** — noise floor {floor:.2f} ± {figures['noise_floor_std']:.2f} "
               "(Retrain vs Retrain).")

if not deep:
    offer_deep("Compute forgetting quality")

# ------------------------------------------------------------------------------------------------ ε and the ranking
left, right = st.columns([1, 1])
with left:
    st.markdown("**Per-image ε** (the challenge's privacy loss: 0 = no rule tells unlearning runs from Retrains)")
    if deep and len(arrays.get("epsilon", [])):
        st.plotly_chart(charts.epsilon_histogram(arrays["epsilon"], deep["largest_finite_epsilon"]), key="eps")
        st.caption(f"With N = {deep['resolution_runs']} models per side the largest measurable ε is "
                   f"{deep['largest_finite_epsilon']:.2f}; anything more separated reads ∞.")
    else:
        st.caption("Appears after the deep audit (it needs several unlearning runs to compare with the Retrains).")
with right:
    st.markdown("**The images an attacker can still single out** (highest LiRA statistic first)")
    if lira:
        statistic = np.where(arrays[f"{prefix}_skipped"], -np.inf, arrays[f"{prefix}_statistic"])
        order = np.argsort(-statistic, kind="stable")[:16]
        ids = [int(forget_ids[k]) for k in order]
        st.image(resources.image_data_urls(tuple(ids)), width=56,
                 caption=[f"#{r + 1} · {statistic[k]:+.1f}" for r, k in enumerate(order)])
        st.caption("The number is the attack's statistic (log-likelihood ratio *trained on it* vs *never saw it*, "
                   "or the z-score against the Retrains): above 0 the model still looks like one that trained on "
                   "the image.")

# ------------------------------------------------------------------------------------------------ one image
if lira:
    st.subheader("One image against its populations")
    rank = st.selectbox("Image", range(len(order)), key="audit-image",
                        format_func=lambda r: f"#{r + 1} · id {ids[r]} · {names[int(resources.dataset().train_labels[ids[r]])]}")
    k = int(order[rank])
    groups = {}
    if "shadow_phi" in arrays:
        shadow_in = arrays["shadow_in"][:, k]
        groups = {"trained on it": arrays["shadow_phi"][shadow_in, k],
                  "never trained on it": arrays["shadow_phi"][~shadow_in, k]}
    if "retrain_phi" in arrays:
        groups["Retrain"] = arrays["retrain_phi"][:, k]
    if "runs_phi" in arrays:
        groups["unlearning runs"] = arrays["runs_phi"][:, k]
    a, b = st.columns([1, 4])
    a.image(resources.image_data_urls((ids[rank],), scale=4)[0], caption=f"training image {ids[rank]}")
    b.plotly_chart(charts.example_populations(groups, float(arrays["phi"][k]), "this run"), key="example")
    st.caption("Each tick is one model's confidence φ on this image; curves are the fitted normals the attack uses. "
               "The dashed line is this run's model. "
               + ("For a whole class the target is the green group (Retrains of this forget set): the shadows, blue "
                  "and red, all learned the class." if headline == "offline" else
                  "Near the blue group (models that never trained on it): forgotten; near the red (trained on it): "
                  "the image still leaves a trace."))
