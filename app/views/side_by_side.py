"""Side by side: two or more finished runs on one forget set (and Retrain), every measure next to each other,
differences highlighted; exported as one self-contained HTML page."""
import streamlit as st

from app import comparison as comparing, comparison_view, pipeline, report, resources, state, store, ui

st.title("Side by side")
ui.job_panel("side")
records = [r for r in store.list_runs() if r.get("status") == "finished"]
groups = comparing.comparable(records)
if not groups:
    st.info("Side by side needs at least two finished runs on the same forget set — e.g. forget a class with "
            "WSS-CL, then with SalUn, then tick both on Compare runs.")
    cols = st.columns(2)
    cols[0].page_link("views/run.py", label="Run unlearning", icon=":material/play_arrow:")
    cols[1].page_link("views/compare.py", label="Compare runs", icon=":material/table_chart:")
    st.stop()

by_id = {r["id"]: r for r in records}
ticked = state.get("compare_ids")     # None until the user ticks runs (Compare runs or here)
wanted = [i for i in ticked or [] if i in by_id]
if ticked is None or (ticked and not wanted):     # nothing ticked yet: the forget set of the current run (else the newest group), all its runs
    current = state.current_run()
    key = next((k for k, rs in groups.items() if any(r["id"] == current for r in rs)), next(iter(groups)))
    wanted = [r["id"] for r in groups[key]][:3][::-1]
mine = {r["id"] for r in ui.session_runs()}
options = [r["id"] for r in records]
state.put("side-runs", wanted)      # a keyed widget keeps its first value: give it the current choice each time
picked = st.multiselect("Runs to compare (the first is the baseline of the differences)", options, key="side-runs",
                        format_func=lambda i: comparing.run_view(by_id[i]).title + ("" if i in mine else " · earlier"),
                        on_change=lambda: state.put("compare_ids", list(state.get("side-runs"))))
try:
    chosen = [by_id[i] for i in picked]
    spec = comparing.run_view(chosen[0]).forget_spec if chosen else None
    reference = None
    if spec and not any(r.get("reference_metrics") for r in chosen):
        reference, _ = pipeline.reference_metrics(chosen[0].get("dataset") or resources.dataset().name, spec)
    retrain_seconds = None
    if spec:
        path, _ = pipeline.reference_checkpoint(chosen[0].get("dataset") or resources.dataset().name, spec)
        try:
            import engine

            retrain_seconds = engine.read_sidecar(path).get("seconds") if path else None
        except Exception:  # noqa: BLE001 — a reference without a readable sidecar just shows no time
            retrain_seconds = None
    result = comparing.compare(chosen, load_insights=pipeline.load_insights, reference=reference,
                               retrain_seconds=retrain_seconds)
except ValueError as error:
    st.warning(f"Cannot compare these: {error}.")
    st.stop()

st.markdown(f"Forget set: **{result.spec_text}**" + (" · Retrain as the last column" if result.reference else ""))
comparison_view.render(result, resources.dataset().classes, key="side")

st.subheader("Export")
names = "-vs-".join(r.method for r in result.runs)
st.download_button("Comparison report (self-contained HTML)",
                   lambda: report.comparison_html(result, resources.dataset().classes), on_click="ignore",
                   file_name=f"side-by-side-{names}.html", mime="text/html", key="side-export",
                   help="The table and every figure inline (plotly.js embedded): opens offline.")
