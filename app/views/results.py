"""Results: the four gauges against Retrain, Avg. Gap, run time, per-class accuracy, confusion matrices."""
import numpy as np
import streamlit as st

from app import charts, pipeline, resources, state, trace, ui

st.title("Results")
ui.storage_guard()                 # an unusable run folder: one clear message, no traceback
ui.job_panel("results")
run = ui.pick_run("results")
if run is None:
    ui.no_run_yet()
    st.stop()

names = resources.dataset().classes
spec = ui.run_spec(run)
metrics, original = run["metrics"], run.get("original_metrics") or {}
reference, source = run.get("reference_metrics"), run.get("reference_source", "")
if reference is None:   # a background Retrain may have finished since the run
    reference, source = resources.reference_metrics(spec)

st.markdown(f"**{run.get('label')}** on **{run.get('spec_text')}** · {run.get('device')} · seed {run.get('seed')}"
            + (" · *fast mode*" if run.get("fast") else ""))
if run["id"] in state.shared_runs() or run.get("owner") != state.session_id():
    left, right = st.columns([4, 1])
    left.info("**Shared result** — this exact run (same model, forget set, method, settings and seed) was computed "
              "once and opens for everyone who asks for it; runs are deterministic, so your own would give the same "
              "numbers. Who ran it is not shown.", icon=":material/groups:")
    if right.button("Run it again myself", key="rerun-own",
                    help="A fresh run of your own with these settings (queued like any run; not shared)."):
        request = pipeline.run_request(run["method"], run["config"], spec, int(run.get("seed", 0)))
        from app.jobs import QueueFull

        try:
            job = pipeline.submit_run(state.session_id(), request)
        except QueueFull as error:
            st.error(str(error), icon=":material/hourglass_top:")
        else:
            state.add_job(job.id)
            st.switch_page("views/run.py")
if reference is None:
    pending = pipeline.pending_reference(spec)
    if pending:
        where = "running now" if pending["position"] == 0 else f"#{pending['position']} in the queue"
        st.info(f"Exact unlearning (Retrain) for this forget set is being computed in the background ({where}). "
                "The Retrain marks and the Avg. Gap fill in when it finishes.")
    else:
        left, right = st.columns([4, 1])
        left.info("No Retrain exists yet for this forget set, so there is no reference to compare with.")
        if right.button("Compute Retrain", help="Exact unlearning for this forget set, in the background "
                                                "(about half a minute on a 2-core CPU when idle)."):
            pipeline.submit_reference(state.session_id(), spec)
            st.rerun()

st.plotly_chart(charts.gauges([(key, metrics[key], reference.get(key) if reference else None, original.get(key))
                               for key in ui.METRIC_KEYS]), config={"displayModeBar": False}, key="gauges")
for col, key in zip(st.columns(4), ui.METRIC_KEYS):
    col.caption(charts.METRIC_HELP[key][1])
st.caption("Needle: this run · orange mark: Retrain (exact unlearning), the delta is against it · "
           "shaded part: the original model before unlearning.")

gap = None
if reference:
    import engine

    gap = engine.avg_gap(engine.gap_scores(metrics), engine.gap_scores(reference))
m = st.columns(4)
floor = pipeline.noise_floor(run)
m[0].metric("Avg. Gap to Retrain", ui.fmt(gap, 2) if gap is not None else "pending",
            help="Mean |run − Retrain| over UA, RA, TA, MIA-Efficacy. Lower = closer to exact unlearning.")
if floor is not None:
    m[0].caption(f"Retrain noise floor **{floor['mean']:.2f}** ± {floor['std']:.2f}: the gap between {floor['retrains']} "
                 "Retrains that differ only in seed. Below it, the run is as close as another Retrain would be.")
m[1].metric("Run time", ui.fmt_seconds(run.get("seconds")), help="Wall-clock of the unlearning (saliency included).")
retrain_seconds = None
if reference is not None:
    path, _ = pipeline.reference_checkpoint(run["dataset"], spec)
    try:
        import engine

        retrain_seconds = engine.read_sidecar(path).get("seconds") if path else None
    except Exception:  # noqa: BLE001
        retrain_seconds = None
m[2].metric("Retrain time", ui.fmt_seconds(retrain_seconds),
            help="What exact unlearning cost for this set (precomputed references: the build machine).")
forget_test = metrics.get("forget_test_acc")
if forget_test is not None and np.isfinite(forget_test):
    m[3].metric("Forgotten classes · test accuracy", f"{metrics['forget_test_acc']:.1f} %",
                delta=f"{metrics['forget_test_acc'] - original.get('forget_test_acc', np.nan):.1f} vs original"
                if original else None, delta_color="inverse")

st.subheader("Per-class test accuracy")
series = {"original": original.get("per_class_test_acc") or [None] * len(names),
          "unlearned": metrics["per_class_test_acc"]}
if reference and reference.get("per_class_test_acc"):
    series["retrain"] = reference["per_class_test_acc"]
st.plotly_chart(charts.per_class_bars(names, series, list(spec.classes)), key="per-class")

st.subheader("Confusion matrix (test set)")
options = ["unlearned", "original"] + (["retrain"] if reference and reference.get("confusion") else [])
which = st.segmented_control("Model", options, default="unlearned", key="confusion-model") or "unlearned"
matrix = {"unlearned": metrics.get("confusion"), "original": original.get("confusion"),
          "retrain": (reference or {}).get("confusion")}[which]
if matrix is not None:
    st.plotly_chart(charts.confusion(np.asarray(matrix), names), key="confusion")

history = run.get("history") or []
if history:
    with st.expander("Training curves"):
        rows = [(i, h.get("stage", ""), h.get("losses", {}), None) for i, h in enumerate(history) if isinstance(h, dict)]
        fig = charts.loss_curves(rows)
        fig.update_layout(xaxis_title="step")
        st.plotly_chart(fig, key="losses")

with st.expander("Configuration and record"):
    st.json({k: run.get(k) for k in ("method", "config", "seed", "forget", "split", "device", "seconds", "status",
                                      "insights", "path")}, expanded=False)
st.caption("Next: " + " · ".join(["weight saliency", "feature space", "privacy"]) + " — in the sidebar.")
trace.mark("results", run=run["id"])
