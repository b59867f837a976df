"""Pieces several pages share: the live job panel, the run picker, the forget-set summary, short copy."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

import engine
from app import settings, sharing, state, store, waiting
from app.jobs import TERMINAL, manager

METRIC_KEYS = engine.GAP_KEYS
METRIC_LABELS = {"UA": "UA ↑ forgotten", "RA": "RA ↑ kept", "TA": "TA ↑ kept", "MIA": "MIA-Efficacy ↑ forgotten"}


def fmt_seconds(seconds) -> str:
    if seconds is None:
        return "—"
    seconds = float(seconds)
    return f"{seconds:.1f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def fmt(value, digits: int = 1) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "—"
    return "—" if value != value else f"{value:.{digits}f}"


# ---------------------------------------------------------------------------------------------- jobs
def active_jobs(owner: str | None = None) -> list[dict]:
    return [j for j in manager().jobs(owner) if j["status"] not in TERMINAL]


def render_job(snapshot: dict, key: str, losses_chart: bool = False) -> None:
    """One job's live state: stage, progress, losses, elapsed/ETA, queue position, Cancel."""
    status, position = snapshot["status"], snapshot["position"]
    head = st.columns([5, 1])
    with head[0]:
        if status == "queued":
            wait = waiting.wait_seconds(snapshot["id"])
            st.markdown(f"**{snapshot['title']}** — waiting, **#{position} in the queue**"
                        + (f", starts in about **{fmt_seconds(wait)}**" if wait else "")
                        + " (one heavy job at a time on this device)")
        elif status == "running":
            eta = snapshot["eta"]
            where = snapshot["metrics"].get("where")      # set by jobs running on a Ray cluster
            st.markdown(f"**{snapshot['title']}** — {snapshot['stage'] or 'starting'} · "
                        f"elapsed {fmt_seconds(snapshot['elapsed'])}"
                        + (f" · stage ETA {fmt_seconds(eta)}" if eta is not None else "")
                        + (f" · on {where}" if where else ""))
        else:
            where = snapshot["metrics"].get("where")
            st.markdown(f"**{snapshot['title']}** — {status} after {fmt_seconds(snapshot['elapsed'])}"
                        + (f" · on {where}" if where else ""))
    with head[1]:
        if status not in TERMINAL and snapshot["owner"] == state.session_id():
            if st.button("Cancel", key=f"cancel-{key}-{snapshot['id']}", disabled=snapshot["cancel_requested"],
                         help="Stops the run at its next batch (within seconds). Nothing is saved as finished."):
                manager().cancel(snapshot["id"])
    if status == "running":
        fraction = snapshot["step"] / snapshot["total"] if snapshot["total"] else 0.0
        losses = {k: v for k, v in snapshot["metrics"].items() if isinstance(v, float)}
        text = " · ".join(f"{k} {v:.3f}" for k, v in list(losses.items())[:4])
        epoch = snapshot["metrics"].get("epoch")
        counts = f"{snapshot['step']}/{snapshot['total']}" if snapshot["total"] > 1 else snapshot["stage"]
        label = counts + (f" · epoch {epoch}" if epoch is not None else "") + (f" · {text}" if text else "")
        st.progress(min(1.0, max(0.0, fraction)), text=label)
        if losses_chart and len(snapshot["history"]) > 3 and snapshot["owner"] == state.session_id():
            from app import charts

            fig = charts.loss_curves(snapshot["history"])
            fig.update_layout(height=200, margin=dict(l=10, r=10, t=10, b=10))
            st.plotly_chart(fig, key=f"live-loss-{key}-{snapshot['id']}", config={"displayModeBar": False})
    if status not in TERMINAL and snapshot["owner"] != state.session_id() and snapshot["kind"] == "unlearn":
        st.caption("This very run (same model, forget set, method, settings and seed) was already on its way, so "
                   "you follow it instead of queueing a copy: its results are a **shared** result, the same numbers "
                   "a run of your own would give.")
    if status == "failed":
        st.error(f"The run failed: {snapshot['error']}. The app and earlier results are unaffected.")


def job_panel(key: str, only_owner: bool = True, show_recent: bool = False, losses_chart: bool = False) -> None:
    """The session's jobs (live while any runs). Polled by a fragment; the rest of the page stays idle."""
    owner = state.session_id() if only_owner else None

    def body():
        # a poll that finds nothing changed (same fingerprint) draws the last snapshots again: no copies of job
        # histories, no event bookkeeping, no disk
        fingerprint = manager().fingerprint(owner)
        cache = state.get("panel_cache") or {}
        changed = cache.get(key, (None,))[0] != fingerprint
        jobs = manager().jobs(owner) if changed else cache[key][1]   # this session's runs (and those it joined)
        if changed:
            state.put("panel_cache", {**cache, key: (fingerprint, jobs)})
        live = [j for j in jobs if j["status"] not in TERMINAL]
        recent = [j for j in jobs if j["status"] in TERMINAL][-2:] if show_recent else []
        for snapshot in live + recent[::-1]:
            render_job(snapshot, key, losses_chart)
        long_queue_notice([j for j in live if j["status"] == "queued"])
        if not changed:
            return
        # a run's metrics are on disk before its insights: show them at once, and again when the job ends
        seen = set(state.get("seen_done"))
        events = {f"{j['id']}:done" for j in jobs if j["status"] in TERMINAL} | {
            f"{j['id']}:metrics" for j in jobs if j["run_id"]}
        new = events - seen
        if new:
            state.put("seen_done", sorted(seen | new))
            for j in jobs:
                if j["kind"] == "unlearn" and j["run_id"] and f"{j['id']}:metrics" in new:
                    if j["owner"] != state.session_id():      # a joined run: this session's shared result
                        state.add_shared_run(j["run_id"])
                    state.set_current_run(j["run_id"])
            if live_before.get("live"):
                st.rerun(scope="app")      # the rest of the page (results, tables) fills in
        live_before["live"] = bool(live)

    live_before = {"live": bool(active_jobs(owner))}
    if live_before["live"]:
        st.fragment(body, run_every=settings.POLL_SECONDS)()
    else:
        body()


def long_queue_notice(queued: list[dict]) -> None:
    """When this session waits long, say where results come at once: runs already computed are shared."""
    waits = [w for w in (waiting.wait_seconds(j["id"]) for j in queued) if w]
    if waits and max(waits) >= waiting.LONG_QUEUE_S:
        st.info(f"The queue is long: about {fmt_seconds(max(waits))} before your run starts. Runs already computed "
                "open at once as a **shared** result — the suggested class with the default settings, or any single "
                "class with WSS-CL or SalUn at their defaults (prepared for the classroom). Finished runs are also "
                "in the *Run* list on Results.", icon=":material/groups:")


# ---------------------------------------------------------------------------------------------- runs
def session_runs() -> list[dict]:
    """Runs this session started (newest first), then nothing else."""
    return [r for r in store.list_runs() if r.get("owner") == state.session_id()]


def pick_run(key: str, finished_only: bool = True) -> dict | None:
    """A select box over runs on disk (this session's first); returns the chosen record.

    The session's current run is the one shown: the run that just finished (the job panel sets it when its
    metrics land) or the one the user picked last, on any page. A keyed select box ignores its ``index`` after
    its first render, so the widget's value is set to the current run before it renders, and a user's pick
    goes back into the current run through ``on_change``.
    """
    listed = store.list_runs()
    known = {r["id"] for r in listed}
    served = (set(state.shared_runs()) | {state.current_run()}) - known - {None}
    listed += [r for r in map(sharing.prepared_run, sorted(served)) if r]     # read-only prepared runs it was served
    runs = [r for r in listed if not finished_only or r.get("status") == "finished"]
    if not runs:
        return None
    shared = set(state.shared_runs())
    mine = {r["id"] for r in runs if r.get("owner") == state.session_id()} | shared
    runs.sort(key=lambda r: (r["id"] not in mine,), reverse=False)
    ids = [r["id"] for r in runs]
    current = state.current_run()
    widget = f"run-pick-{key}"
    state.put(widget, current if current in ids else ids[0])
    by_id = {r["id"]: r for r in runs}

    def label(run_id: str) -> str:
        r = by_id[run_id]
        gap = f" · gap {fmt(r.get('avg_gap'), 2)}" if r.get("avg_gap") is not None else ""
        who = " · shared" if run_id in shared else "" if run_id in mine else " · earlier"
        return f"{r.get('label', r.get('method'))} · {r.get('spec_text', '')}{gap} · {str(r.get('created', ''))[11:19]}{who}"

    chosen = st.selectbox("Run", ids, format_func=label, key=widget,
                          on_change=lambda: state.set_current_run(state.get(widget)))
    if chosen != current:
        state.set_current_run(chosen)
    run = by_id[chosen]
    showing(run)
    return run


def run_title(run: dict) -> str:
    """method · forget set · start time (UTC), the words every page uses to name a run."""
    return (f"{run.get('label', run.get('method'))} · {run.get('spec_text', '')} · "
            f"{str(run.get('created', ''))[11:19]} UTC")


def showing(run: dict) -> None:
    """Say which run the page shows, and which of the user's other runs are still in progress."""
    others = [j for j in active_jobs(state.session_id())
              if j["kind"] == "unlearn" and j["run_id"] != run["id"]]     # params is a RunRequest; the job has the id
    st.markdown(f"Showing **{run_title(run)}**")
    for job in others:
        if job["run_id"]:                     # metrics saved, insights (pictures) still computing
            st.info(f"**{job['title']}** has finished its metrics (pick it in the list); its pictures are still "
                    "being computed.", icon=":material/hourglass_top:")
            continue
        where = "waiting in the queue" if job["status"] == "queued" else "in progress"
        st.info(f"Another run is {where}: **{job['title']}**. This page still shows the run named above; it "
                "switches to the new run as soon as its metrics are ready (or pick it in the list).",
                icon=":material/hourglass_top:")


def no_run_yet() -> None:
    st.info("No finished run yet. Choose what to forget, then start a run.")
    cols = st.columns(2)
    cols[0].page_link("views/forget.py", label="Choose what to forget", icon=":material/target:")
    cols[1].page_link("views/run.py", label="Run unlearning", icon=":material/play_arrow:")


def spec_summary(spec: engine.ForgetSpec | None, class_names) -> str:
    return spec.describe(class_names) if spec is not None else "nothing chosen yet"


def run_spec(run: dict) -> engine.ForgetSpec | None:
    """A listed run's forget set as a value (records store it as JSON)."""
    values = run.get("forget") or run.get("spec")
    return engine.ForgetSpec.from_dict(values) if values else None


@dataclass(frozen=True)
class NumberField:
    """What `bounded_number` needs of a field (engine.config_fields gives the same attributes)."""

    name: str
    type: str
    min: float | None = None
    max: float | None = None
    help: str = ""


def bounded_number(label: str, field, default, key: str) -> tuple[float | int, str | None]:
    """A number input whose bounds are checked here, visibly, rather than by the widget: (value, problem).

    Streamlit's own min/max make the browser put the previous value back, silently, when a typed number lies
    outside them, so a run would start with a value the user did not choose. Here the typed value arrives as it
    is; outside the bounds an error shows under the field and ``problem`` says why (Start refuses)."""
    lo, hi = field.min, field.max
    allowed = f"Allowed: {'−∞' if lo is None else f'{lo:g}'} to {'∞' if hi is None else f'{hi:g}'}."
    text = f"{field.help} {allowed}".strip()
    if field.type == "int":
        value = int(st.number_input(label, value=int(default), step=1, help=text, key=key))
    else:
        start = float(default)
        value = float(st.number_input(label, value=start, format="%.2e" if 0 < abs(start) < 1e-3 else "%.4g",
                                      step=max(abs(start) / 10, 1e-6), help=text, key=key))
    problem = None
    if hi is not None and value > hi:
        problem = f"{label} {value:g} is above its maximum, {hi:g}"
    elif lo is not None and value < lo:
        problem = f"{label} {value:g} is below its minimum, {lo:g}"
    if problem:
        st.error(problem, icon=":material/block:")
    return value, problem


def storage_guard() -> None:
    """Stop the page with one clear message when the run folder cannot be used (uncreatable, read-only, or
    an unusable size cap), instead of a traceback from deep inside a listing or a save."""
    problem = store.problem()
    if problem:
        st.error(problem, icon=":material/folder_off:")
        st.stop()
