"""Unlearning Lab — entrypoint: page config, navigation, the shared sidebar.

    streamlit run app/streamlit_app.py            (UNLEARNING_LAB_FAST=1 for tiny runs; see docs/app.md)
"""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("NUMBA_CACHE_DIR", str(REPO / ".numba_cache"))   # UMAP's compiled code, across restarts
# Torch runs here on several threads (the run worker, the warm-up, page scripts). With OpenMP's default
# spin-waiting, the idle thread team of one of them keeps spinning while another computes: measured on the
# 2-core CPU, a WSS-CL run after the warm-up took 189 s instead of 31 s. Passive waiting removes that
# (31 s). Must be set before torch loads libgomp, i.e. before `import engine`.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st  # noqa: E402

st.set_page_config(page_title="Unlearning Lab", page_icon=":material/layers_clear:", layout="wide")

from app import settings, state, trace, ui  # noqa: E402

HERE = Path(__file__).resolve().parent
pages = {
    "Start": [st.Page(str(HERE / "views/learn.py"), title="What is unlearning?", icon=":material/lightbulb:", default=True),
              st.Page(str(HERE / "views/teaching.py"), title="Guided tour", icon=":material/school:")],
    "Do": [st.Page(str(HERE / "views/forget.py"), title="1 · Choose what to forget", icon=":material/target:"),
           st.Page(str(HERE / "views/run.py"), title="2 · Run", icon=":material/play_arrow:")],
    "See": [st.Page(str(HERE / "views/results.py"), title="Results", icon=":material/speed:"),
            st.Page(str(HERE / "views/saliency.py"), title="Weight saliency", icon=":material/grid_on:"),
            st.Page(str(HERE / "views/features.py"), title="Feature space", icon=":material/scatter_plot:"),
            st.Page(str(HERE / "views/privacy.py"), title="Privacy", icon=":material/shield:"),
            st.Page(str(HERE / "views/audit.py"), title="Per-example audit", icon=":material/person_search:"),
            st.Page(str(HERE / "views/compare.py"), title="Compare runs", icon=":material/table_chart:"),
            st.Page(str(HERE / "views/side_by_side.py"), title="Side by side", icon=":material/compare:")],
}
page = st.navigation(pages)


def _warm_up() -> None:
    """Once per process, in the background: the original model's outputs on the training pool, so the
    first run skips that pass (started after the first page has been sent)."""
    import engine
    from app import pipeline
    from app.jobs import lower_priority

    lower_priority()

    try:
        worker = pipeline.worker_process()
        if worker is not None:       # jobs run there: warm its caches, not this process's
            worker.run_remote(engine.Job("engine.remote_jobs:warm_up", {"dataset": settings.DATASET}))
            return
        dataset = engine.load_dataset(settings.DATASET)
        device = engine.resolve_device(None)
        model, _ = engine.load_original(dataset, device=device)
        pipeline.original_outputs(model, dataset, device)
    except Exception:  # noqa: BLE001 — the pages report a missing model themselves
        pass


with trace.script_run(state.session_id(), page.title):     # UNLEARNING_LAB_TRACE set: this run's server time
    with st.sidebar:
        st.caption("FORGET SET")
        st.markdown(ui.spec_summary(state.forget_spec(), settings.class_names()))
        live = ui.active_jobs()
        if live:
            mine = [j for j in live if j["owner"] == state.session_id()]
            st.caption("DEVICE QUEUE")
            st.markdown(f"{len(live)} job(s) queued or running" + (f", {len(mine)} yours" if mine else ""))
        if settings.FAST:
            st.warning("Fast mode (UNLEARNING_LAB_FAST=1): tiny runs for tests and demos, not real results.")
    page.run()

import app as _package  # noqa: E402

if not getattr(_package, "_warm_started", False) and not os.environ.get("UNLEARNING_LAB_NO_WARMUP"):
    _package._warm_started = True
    threading.Thread(target=_warm_up, name="unlearning-warm-up", daemon=True).start()
