"""The guided tour's last step: the tour's WSS-CL run side by side with a baseline on the same forget set.

The baseline is prepared like the tour run (python -m scripts.build_tour_run builds both, same seed, so their
feature maps share one frame): no compute when a visitor reaches this step. Without it, a finished baseline run
on the tour's forget set from this machine's run folder is used, else the step says how to make one.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import comparison as comparing, comparison_view, pipeline, store

BASELINES = Path(__file__).resolve().parent / "tour" / "compare"


def baseline_runs(tour_run: dict) -> list[dict]:
    """Prepared baselines (app/tour/compare/<method>/) with insights, else finished local runs of other methods."""
    prepared = []
    if BASELINES.is_dir():
        for folder in sorted(p for p in BASELINES.iterdir() if (p / "run.json").is_file()):
            record = store.read_record(folder)
            if record and record.get("insights") == "ready":
                prepared.append(record)
    if prepared:
        return prepared
    key = comparing.run_view(tour_run).spec_key
    for record in store.list_runs():
        view = comparing.run_view(record)
        if record.get("status") == "finished" and view.method != tour_run.get("method") and view.spec_key == key \
                and view.insights_ready and bool(record.get("fast")) == bool(tour_run.get("fast")):
            return [record]
    return []


def render(tour_run: dict, class_names) -> None:
    baselines = baseline_runs(tour_run)
    if not baselines:
        st.info("No baseline has been prepared for the comparison step on this machine. Run SalUn on the same "
                "class (Choose what to forget → Run), then come back — or see any two runs on Side by side.")
        st.page_link("views/run.py", label="Run unlearning", icon=":material/play_arrow:")
        return
    result = comparing.compare([tour_run, *baselines], load_insights=pipeline.load_insights)
    names = " and ".join(r.label for r in result.runs[1:])
    st.markdown(f"The same forget set, the same original model, the same seed — unlearnt by **{names}**, a "
                "published baseline, beside WSS-CL. Which one is closer to Retrain on each measure is highlighted; "
                "the feature maps share one frame, so a point sits in the same place in every panel unless the "
                "model's view of it changed. No single number decides: look at forgetting (UA, MIA), utility (RA, "
                "TA), the pictures and the time.")
    comparison_view.render(result, class_names, key="tour-compare", compact=True)
    st.page_link("views/side_by_side.py", label="Compare your own runs side by side", icon=":material/compare:")
