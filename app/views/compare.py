"""Compare: every run of this session (or all on disk) in one table, with JSON and HTML export, and ticks that
open runs of one forget set side by side."""
import pandas as pd
import streamlit as st

from app import comparison as comparing, pipeline, report, resources, state, ui
from app import store

st.title("Compare runs")
ui.storage_guard()                 # an unusable run folder: one clear message, no traceback
ui.job_panel("compare")
scope = st.segmented_control("Runs", ["session", "all"], default="session", key="compare-scope",
                             format_func={"session": "this session", "all": "all on disk (incl. earlier sessions)"}.get)
runs = ui.session_runs() if scope != "all" else store.list_runs()
if not runs:
    st.info("No runs yet in this session." if scope != "all" else "No runs on disk yet.")
    ui.no_run_yet()
    st.stop()

rows = []
for r in runs:
    m = r.get("metrics") or {}
    cfg = r.get("config") or {}
    rows.append({"method": r.get("label", r.get("method")), "forget set": r.get("spec_text"),
                 "status": r.get("status_text") or r.get("status"), "UA": m.get("UA"), "RA": m.get("RA"), "TA": m.get("TA"), "MIA": m.get("MIA"),
                 "Avg. Gap": r.get("avg_gap"), "seconds": r.get("seconds"),
                 "config": ", ".join(f"{k}={v}" for k, v in cfg.items()), "seed": r.get("seed"),
                 "run": r["id"].split("/")[-1]})
table = pd.DataFrame(rows)
st.dataframe(table, hide_index=True, width="stretch",
             column_config={k: st.column_config.NumberColumn(k, format="%.1f") for k in (*ui.METRIC_KEYS, "seconds")}
             | {"Avg. Gap": st.column_config.NumberColumn("Avg. Gap ↓", format="%.2f",
                                                          help="Mean |run − Retrain| over UA, RA, TA, MIA")})
st.caption("UA = 100 − forget accuracy and MIA-Efficacy: higher = more forgotten. Avg. Gap: lower = closer to Retrain.")

st.subheader("Export a run")
finished = [r for r in runs if r.get("status") == "finished"]
if finished:
    ids = [r["id"] for r in finished]
    chosen = st.selectbox("Run to export", ids, key="export-run",
                          format_func=lambda i: next(f"{r.get('label')} · {r.get('spec_text')} · {i.split('/')[-1]}"
                                                     for r in finished if r["id"] == i))
    run = next(r for r in finished if r["id"] == chosen)
    name = chosen.split("/")[-1]
    c = st.columns(2)
    c[0].download_button("Record (JSON)", report.run_json(run), file_name=f"{name}.json", mime="application/json",
                         key="export-json", on_click="ignore")
    classes = resources.dataset().classes
    c[1].download_button("Report (self-contained HTML)",
                         lambda: report.run_html(run, classes, pipeline.load_insights(run)), on_click="ignore",
                         file_name=f"{name}.html", mime="text/html", key="export-html",
                         help="Every figure inline (plotly.js embedded): opens offline, doubles as a static showcase.")

st.subheader("Side by side")

groups = comparing.comparable(runs)
if not groups:
    st.caption("Two or more finished runs on the same forget set can be compared side by side (gauges, per-class "
               "accuracy, feature maps in one frame, attack scores) — e.g. run SalUn on the set you forgot with WSS-CL.")
else:
    st.caption("Tick two or more runs on one forget set, then open them side by side.")
    ticked = []
    for key, group in groups.items():
        st.markdown(f"**{group[0].get('spec_text')}**")
        cols = st.columns(min(4, len(group)))
        for k, record in enumerate(group[::-1]):        # oldest first: the first ticked is the baseline
            view = comparing.run_view(record)
            if cols[k % len(cols)].checkbox(view.title, key=f"tick-{record['id']}"):
                ticked.append(record)
    sets = {comparing.run_view(r).spec_key for r in ticked}
    if len(sets) > 1:
        st.warning("The ticked runs forget different sets: tick runs of one forget set.")
    if st.button(f"Side by side ({len(ticked)} ticked)", key="side-open", type="primary",
                 disabled=len(ticked) < 2 or len(sets) > 1):
        state.put("compare_ids", [r["id"] for r in ticked])
        st.switch_page("views/side_by_side.py")
