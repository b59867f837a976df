"""Guided tour: one prepared run, page by page, with a short explanation at each step; it ends with that run
side by side with a baseline on the same forget set (also prepared: app/tour/compare/<method>/)."""
from pathlib import Path

import streamlit as st

import engine
from app import charts, pipeline, resources, settings, state, store, ui

TOUR_CLASS = 1   # Trouser: a distinctive class, so every picture is clear

st.title("Guided tour")
names = resources.dataset().classes
spec = engine.ForgetSpec(classes=(TOUR_CLASS,))


PREPARED = Path(__file__).resolve().parent.parent / "tour" / "run"   # shipped: python -m scripts.build_tour_run
PREPARED_BASELINES = PREPARED.parent / "compare"                       # built by the same script, same seed


def tour_run():
    """The run shipped with the app, else the newest finished WSS-CL run here that forgot the tour class."""
    if (PREPARED / "run.json").is_file():
        record = store.read_record(PREPARED)
        if record and record.get("insights") == "ready":
            return record
    for r in store.list_runs():
        if r.get("status") == "finished" and r.get("method") == pipeline.default_method() \
                and (settings.FAST or not r.get("fast")) and ui.run_spec(r) == spec \
                and r.get("insights") == "ready":
            return r
    return None


run = tour_run()
if run is None:
    st.markdown(f"The tour walks through one run: **{pipeline.label_of(pipeline.default_method())}** forgetting "
                f"the class **{names[TOUR_CLASS]}**. It has not been prepared on this machine yet.")
    ui.job_panel("tour")
    if not ui.active_jobs(state.session_id()):
        if st.button("Prepare the tour run", type="primary"):
            method = pipeline.default_method()
            job = pipeline.submit_run(state.session_id(),
                                      pipeline.run_request(method, pipeline.default_config(method, spec.setting), spec))
            state.add_job(job.id)
            st.rerun()
    st.stop()

insights = pipeline.load_insights(run)
metrics, original = run["metrics"], run.get("original_metrics") or {}
reference = run.get("reference_metrics") or {}
STEPS = ["The question", "The forget set", "Stage 0: which weights?", "Stages 1–3: unlearning",
         "Did it forget?", "Did it keep the rest?", "Where did the images go?", "Can an attacker tell?", "Verdict",
         "Side by side with a baseline"]
step = state.teaching_step()
step = st.select_slider("Step", range(len(STEPS)), value=min(step, len(STEPS) - 1), format_func=lambda i: STEPS[i],
                        )
state.set_teaching_step(step)
st.subheader(f"{step + 1}. {STEPS[step]}")

if step == 0:
    st.markdown(f"A clothing classifier was trained on 10,000 images. Suppose the owner of every **{names[TOUR_CLASS]}** "
                "picture asks for their data to be removed. Retraining from scratch without it is exact but slow. "
                "Can we edit the trained model instead — and prove it is as if the data had never been there?")
    st.plotly_chart(charts.two_stage_diagram(), config={"displayModeBar": False}, key="tour-diagram")
elif step == 1:
    st.image(resources.class_strip(TOUR_CLASS, 12), width="stretch")
    st.markdown(f"The forget set: every training image of **{names[TOUR_CLASS]}** "
                f"({run.get('split', {}).get('forget', '…')} images). Everything else is kept.")
elif step == 2:
    maps = insights.weights
    st.markdown("Before changing anything, WSS-CL asks each weight how much it matters for the forget set "
                "(gradient magnitude). Only the top share moves freely; the rest moves in proportion. Measured on "
                "this model, the guidance changes the result by less than run-to-run noise in every setting (one "
                "class, several, random, hand-picked): it is the paper's idea, not what brings this run close to "
                "Retrain (docs/benchmarks-ablation.md).")
    st.plotly_chart(charts.layer_bars(list(maps.names), {"share in hard mask": maps.selected * 100,
                                                         "mean soft weight ×100": maps.mean_soft * 100}, "percent"),
                    key="tour-saliency")
elif step == 3:
    st.markdown("Stage 1 pushes the forget images' predictions away from their label (uniform over the other "
                "classes). "
                "Stage 2 pulls each forget image towards its own augmented view and away from retained data, then "
                "repairs accuracy on retained data. Stage 3, our addition for whole classes, then pushes down only "
                "the forgotten class's output row — the one thing a Retrain's training ever does to a class it never "
                "sees — so the forget images become as unconfident as under Retrain, and no image the model gives a "
                f"retained class changes its answer. This run took **{ui.fmt_seconds(run.get('seconds'))}**. "
                "Measured: for one class the defaults (tuned to run in a few seconds) keep stages 1–2 gentle — "
                "without stage 3 this run would still recognise most trousers — yet without the repair the model is "
                "broken; the contrastive loss changes the result by less than run-to-run noise on this model "
                "(docs/benchmarks-ablation.md).")
    history = run.get("history") or []
    rows = [(i, h.get("stage", ""), h.get("losses", {}), None) for i, h in enumerate(history) if isinstance(h, dict)]
    if rows:
        fig = charts.loss_curves(rows)
        fig.update_layout(xaxis_title="step")
        st.plotly_chart(fig, key="tour-losses")
elif step == 4:
    st.markdown("**UA** = 100 − accuracy on the forget set: higher = more forgotten. Retrain (orange mark) is the "
                f"target — a model that never saw {names[TOUR_CLASS].lower()}s cannot recognise them at all.")
    if reference:
        ua, target = metrics["UA"], reference["UA"]
        st.markdown(f"Here UA went from **{ui.fmt(original.get('UA'))}** (original) to **{ui.fmt(ua)}**; Retrain: "
                    f"**{ui.fmt(target)}**. " + (
                        "That is close to exact unlearning." if abs(ua - target) < 5 else
                        "That is still far from Retrain: many forget images are still recognised. Unlearning "
                        "strength is a setting — more epochs or a larger stage-1 learning rate on the Run page "
                        "forget more, at some cost in RA/TA. Try it."))
    c = st.columns(2)
    for col, key in zip(c, ("UA", "MIA")):
        col.plotly_chart(charts.gauge(key, metrics[key], reference.get(key), original.get(key)), key=f"tour-{key}")
elif step == 5:
    st.markdown("Forgetting is worthless if the model breaks. **RA** and **TA** should stay close to Retrain's.")
    c = st.columns(2)
    for col, key in zip(c, ("RA", "TA")):
        col.plotly_chart(charts.gauge(key, metrics[key], reference.get(key), original.get(key)), key=f"tour-{key}")
    st.plotly_chart(charts.per_class_bars(names, {"original": original.get("per_class_test_acc"),
                                                  "unlearned": metrics["per_class_test_acc"],
                                                  **({"retrain": reference["per_class_test_acc"]}
                                                     if reference.get("per_class_test_acc") else {})},
                                          [TOUR_CLASS]), key="tour-classes")
elif step == 6:
    space = insights.features
    st.markdown("Each dot is an image, placed by what the model 'sees'. Ringed: the forgotten class. Before, it "
                "forms its own island. Retrain never learnt it, so it scatters its images among look-alike classes; "
                "compare where unlearning put them.")
    c = st.columns(len(space.models))
    for k, name in enumerate(space.models):
        fig = charts.feature_map(space.coordinates[k], space.labels, names, space.in_forget, title=name)
        fig.update_layout(showlegend=False, height=340)
        c[k].plotly_chart(fig, key=f"tour-umap-{name}")
elif step == 7:
    privacy = insights.privacy
    s = list(privacy.scores).index("confidence") if "confidence" in privacy.scores else 0
    st.markdown("An attacker tries to tell forget images from images the model never saw. At AUC 0.5 it is "
                "guessing — which is what exact unlearning gives.")
    st.plotly_chart(charts.roc_curves({m: (privacy.fpr, privacy.tpr[i, 0, s], float(privacy.auc[i, 0, s]))
                                       for i, m in enumerate(privacy.models)}), key="tour-roc")
    audit = pipeline.load_audit(run)
    if audit is not None and audit[0].get("offline"):
        figures = audit[0]
        deep = figures.get("deep") or {}
        auc = figures["offline"]["auc"]
        text = ("**Per image it is another story.** " if auc > 0.8 else "**Per image:** ") + (
                f"An attacker who compares each image's confidence with {figures['offline']['against'].split(' (')[0]} "
                f"scores AUC **{auc:.2f}**")
        if deep.get("forgetting_quality") is not None:
            ceiling = (deep.get("forgetting_quality_ceiling") or {}).get("sigma1.0")
            text += (f", and the NeurIPS 2023 challenge's forgetting quality over {deep['runs']} runs is "
                     f"**{deep['forgetting_quality']:.2f}**" + (f" (a perfect unlearner: about {ceiling:.2f})" if ceiling else ""))
        st.markdown(text + (": the averages match Retrain, single images do not." if auc > 0.8 else
                            ": single images look like Retrain's as well." if 0.4 <= auc <= 0.6 else
                            ": much closer to Retrain than the averages alone could show, yet an attacker still beats "
                            "chance on single images (0.5 would be Retrains among themselves).")
                    + " The per-example audit shows each one.")
        st.page_link("views/audit.py", label="Per-example audit", icon=":material/person_search:")
elif step == 8:
    gap = run.get("avg_gap")
    verdict = ("close to exact unlearning" if gap is not None and gap < 3 else
               "a partial result: closer settings exist" if gap is not None and gap < 10 else
               "far from exact unlearning with these settings" if gap is not None else "not yet compared with Retrain")
    st.markdown(f"Avg. Gap to Retrain: **{ui.fmt(gap, 2)}** points — {verdict} — in "
                f"**{ui.fmt_seconds(run.get('seconds'))}** instead of a full retraining. The numbers, not the method's "
                "name, are the verdict: now try it yourself — another class, a handful of images, other settings, or "
                "a baseline for comparison.")
    st.page_link("views/forget.py", label="Choose what to forget", icon=":material/target:")
else:
    from app import tour_compare

    tour_compare.render(run, names)

nav = st.columns([1, 1, 6])
if nav[0].button("← Back", disabled=step == 0, key="tour-back"):
    state.set_teaching_step(step - 1)
    st.rerun()
if nav[1].button("Next →", disabled=step == len(STEPS) - 1, key="tour-next", type="primary"):
    state.set_teaching_step(step + 1)
    st.rerun()
