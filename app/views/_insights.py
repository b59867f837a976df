"""Shared by the insight pages: pick a run, load its insights (cached), explain what is missing."""
import streamlit as st

from app import pipeline, ui


@st.cache_resource(show_spinner="Loading the run's insights…", max_entries=8)
def _load(path: str, stamp: str):
    return pipeline.load_insights({"path": path, "insights": "ready"})


def run_and_insights(key: str):
    """(run record, Insights) or stops the page with a helpful message. Read-only: never mutate the result."""
    ui.job_panel(key)
    run = ui.pick_run(key)
    if run is None:
        ui.no_run_yet()
        st.stop()
    status = run.get("insights")
    if status != "ready":
        message = {"computing": "Insights for this run are being computed (saliency, attributions, UMAP, attacks) — "
                                "they appear here in a few seconds.",
                   "failed": f"Insights failed for this run: {run.get('insights_error')}",
                   "cancelled": "Insights were cancelled for this run.",
                   "interrupted": "The app restarted while this run's insights were being computed; its metrics "
                                  "stand (Results, Compare). Start the run again for the pictures."}.get(status, "This run has no insights.")
        (st.error if status == "failed" else st.info)(message)
        st.stop()
    try:
        insights = _load(run["path"], str(run.get("insights")))
    except Exception as error:  # noqa: BLE001
        st.error(f"Could not read this run's insights ({type(error).__name__}: {error}).")
        st.stop()
    if insights is None:
        st.info("This run has no insights.")
        st.stop()
    return run, insights
