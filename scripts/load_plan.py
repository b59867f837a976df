"""The load test's plain parts, no browser: who does what (scenarios), what the run folder says, the checks, the
figures and the table. `scripts/load_test.py` drives the browser and the server and calls these."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
METHOD_LABEL = "WSS-CL"          # the Run page's default method; every session keeps it
FALLBACK_SUGGESTED = "Trouser"   # the guided tour's class, used while the Choose page suggests none
CUSTOM_FIELD = ("sparsity", 0.3)  # a hyperparameter a "custom config" session changes (WSS-CL default 0.5)
CUSTOM_SEED = 1
METRIC_KEYS = ("UA", "RA", "TA", "MIA")


@dataclass
class Choice:
    """What one session picks: a class, the default method, and at most one change from the defaults."""
    class_name: str
    kind: str = "default"                       # default | other-class | seed | hyperparameter
    seed: int = 0
    field: Optional[tuple] = None               # (label, value) typed into the hyperparameter form
    suggested: bool = False

    def key(self) -> str:
        """Sessions with equal keys asked for the same run (and must get the same metrics)."""
        return json.dumps([self.class_name, METHOD_LABEL, self.seed, list(self.field) if self.field else None])

    def text(self) -> str:
        change = f" · seed {self.seed}" if self.kind == "seed" else (
            f" · {self.field[0]}={self.field[1]}" if self.field else "")
        return f"{METHOD_LABEL} · class {self.class_name}{change}" + (" (suggested)" if self.suggested else "")


def plan(scenario: str, sessions: int, suggested: str = FALLBACK_SUGGESTED) -> list[Choice]:
    """hardening: session k forgets class k (distinct runs, FIFO queue). classroom: a quarter of the sessions (at
    least one from 4 on) make their own choice — other classes at the defaults, a seed, a hyperparameter — and the
    rest take the suggested class at the defaults (16 sessions → 12 + 4, as the classroom bar says)."""
    if sessions < 1:
        raise ValueError("--sessions must be at least 1")
    if scenario == "hardening":
        if sessions > len(CLASSES) - 1:
            raise ValueError(f"the hardening scenario forgets one class per session: at most {len(CLASSES) - 1}")
        return [Choice(CLASSES[k]) for k in range(sessions)]
    if scenario != "classroom":
        raise ValueError(f"unknown scenario {scenario!r}: hardening or classroom")
    if suggested not in CLASSES:
        raise ValueError(f"suggested class {suggested!r} is not one of {', '.join(CLASSES)}")
    others = [c for c in CLASSES if c != suggested]
    own = []
    for k in range(sessions // 4):
        kind = ("other-class", "seed", "other-class", "hyperparameter")[k % 4]
        if kind == "other-class":
            own.append(Choice(others[len([c for c in own if c.kind == "other-class"]) % len(others)], kind))
        elif kind == "seed":
            own.append(Choice(suggested, kind, seed=CUSTOM_SEED + k // 4))
        else:
            own.append(Choice(suggested, kind, field=CUSTOM_FIELD))
    shared = [Choice(suggested, suggested=True) for _ in range(sessions - len(own))]
    # interleave, so the suggested sessions are not all first in the click order
    order, step = [], max(1, len(shared) // max(1, len(own)))
    while shared or own:
        order += [shared.pop(0) for _ in range(min(step, len(shared)))]
        if own:
            order.append(own.pop(0))
    return order


# ---------------------------------------------------------------------------------------------- the run folder
def read_records(runs: Path) -> list[dict]:
    """Every run record under the run folder (not the Retrain references or uploads), with the figures the checks
    need. The spec sits under "spec" (today) or "forget" (typed records); both are read."""
    rows = []
    for path in sorted(runs.rglob("run.json")):
        if any(part.startswith("_") for part in path.relative_to(runs).parts):
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            rows.append({"path": str(path), "status": f"unreadable: {error}"})
            continue
        spec = record.get("spec") or record.get("forget") or {}
        model = path.parent / "model.safetensors"
        rows.append({"path": str(path.parent), "classes": spec.get("classes"), "method": record.get("method"),
                     "label": record.get("label"), "config": record.get("config"), "seed": record.get("seed"),
                     "owner": record.get("owner"), "status": record.get("status"),
                     "metrics": {k: (record.get("metrics") or {}).get(k) for k in METRIC_KEYS},
                     "metrics_all": record.get("metrics"),
                     "original_UA": (record.get("original_metrics") or {}).get("UA"),
                     "seconds": record.get("seconds"), "insights": record.get("insights"),
                     "fast": bool(record.get("fast")),
                     "saved": model.stat().st_mtime if model.exists() else None})
    return sorted(rows, key=lambda r: r.get("saved") or 0)


def prepared_records(roots: list[Path], choices: list[Choice], fast: bool) -> list[dict]:
    """The app's read-only prepared runs (the tour's, the classroom's) that serve a choice of this load: the
    default method at its defaults on a chosen class and seed, in the load's mode. A shared result served from
    them has no record in the run folder, so the checks read these too."""
    wanted = {(CLASSES.index(c.class_name), c.seed) for c in choices if c.field is None}
    rows = []
    for root in roots:
        for row in read_records(root) if root.is_dir() else []:
            classes = row.get("classes") or []
            if row.get("method") == "wsscl" and len(classes) == 1 and (classes[0], row.get("seed")) in wanted \
                    and row.get("fast") == fast and row.get("status") == "finished":
                rows.append(row)
    return rows


def record_key(record: dict) -> str:
    return json.dumps([record.get("classes"), record.get("method"), record.get("seed"), record.get("config")],
                      sort_keys=True, default=str)


def overlaps(records: list[dict]) -> list[str]:
    """Runs whose device intervals [saved - seconds, saved] overlap: one device means none should."""
    done = [r for r in records if r.get("saved") and r.get("seconds") is not None]
    return [r["path"] for a, r in zip(done, done[1:]) if r["saved"] - r["seconds"] < a["saved"] - 0.05]


# ---------------------------------------------------------------------------------------------- figures
def percentile(values: list[float], q: float) -> Optional[float]:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Bars:
    """Time bars (issue figures). Reported always; they fail the run only with --enforce-bars, because on a
    shared machine they measure the neighbours."""
    all_results_s: Optional[float] = None       # every session's Start → its results
    shared_lag_s: Optional[float] = None        # suggested sessions: results after the first of them finished
    page_response_s: Optional[float] = 2.0      # the slowest navigation probe


def evaluate(choices: list[Choice], rows: list[dict], records: list[dict], probes: list[float], *, shared: bool,
             bars: Bars) -> tuple[dict, dict, dict]:
    """(checks, bar results, figures). ``rows`` are the sessions' results in plan order; ``shared``: identical
    choices may be served by one run (then fewer records than sessions, and owners repeat)."""
    finished = [r for r in records if r.get("status") == "finished"]
    groups: dict[str, list[Choice]] = {}
    for choice in choices:
        groups.setdefault(choice.key(), []).append(choice)
    by_key: dict[str, list[dict]] = {}
    for record in finished:
        by_key.setdefault(record_key(record), []).append(record)
    per_group_ok = all(len(v) >= 1 for v in by_key.values()) and len(by_key) == len(groups)
    if not shared:
        per_group_ok = per_group_ok and sorted(len(v) for v in by_key.values()) == sorted(len(g) for g in groups.values())
    identical = all(len({json.dumps(r["metrics_all"], sort_keys=True) for r in v}) == 1 for v in by_key.values())
    results = [r.get("start_to_results_s") for r in rows]
    checks = {
        "every_session_got_results": all(v is not None for v in results),
        "no_exception_or_error_box": not any(r.get("errors") for r in rows),
        "isolated": all(r.get("own_choice_shown") and not r.get("other_choice_shown") for r in rows),
        "records_finished": len(finished) == len(records) and bool(records),
        "one_record_group_per_choice": per_group_ok,
        "identical_choices_identical_metrics": identical,
        "all_forgot": all((r["metrics"]["UA"] or 0) > (r["original_UA"] or 0) for r in finished) and bool(finished),
        "never_overlapped": not overlaps(records),
    }
    if not shared:
        checks["distinct_owners"] = len({r.get("owner") for r in finished}) == len(choices)
        if len(choices) > 1:
            checks["queued"] = any(r.get("saw_queue") for r in rows)
    suggested = [r.get("start_to_results_s") for r, c in zip(rows, choices) if c.suggested]
    suggested = [v for v in suggested if v is not None]
    figures = {
        "start_to_results_s": results,
        "click_to_all_finished_s": max(results) if results and None not in results else None,
        "shared_lag_s": round(max(suggested) - min(suggested), 1) if len(suggested) > 1 else None,
        "page_response_max_s": round(max(probes), 2) if probes else None,
        "page_response_p95_s": round(percentile(probes, 95), 2) if probes else None,
        "page_probes": len(probes),
        "records_per_choice": {k: len(v) for k, v in by_key.items()},
    }
    bar_results = {}
    if bars.all_results_s is not None:
        bar_results["all_results_s"] = figures["click_to_all_finished_s"] is not None and \
            figures["click_to_all_finished_s"] <= bars.all_results_s
    if bars.shared_lag_s is not None and figures["shared_lag_s"] is not None:
        bar_results["shared_lag_s"] = figures["shared_lag_s"] <= bars.shared_lag_s
    if bars.page_response_s is not None:
        bar_results["page_response_s"] = figures["page_response_max_s"] is not None and \
            figures["page_response_max_s"] <= bars.page_response_s
    return checks, bar_results, figures


def server_figures(trace: list[dict], began: Optional[float], ended: Optional[float]) -> dict:
    """The server's side of the load, from the app's trace (``app/trace.py``, one line per full script run).

    Page response on the server: each script run's duration (start → last element sent to the page), for every
    run that started between ``began`` (the first Start click) and ``ended`` (the last session's results) — what the
    server took, without the browser's drawing. Shared results on the server: per session, its first Start and the
    end of the first script run after it that offered results — the Run page's link (``results_link``) or the Results
    page drawing the run (``results``: a shared result, which Start opens at once); sessions are grouped by the run they
    were offered, and a session's lag is the time from when both its run existed and it had asked (the later of the
    group's first results and its own Start) to its results — the biggest group is the suggested one."""
    if began is None:
        return {"server_page_runs": 0}
    ended = ended or max((r.get("t1", 0) for r in trace), default=began)
    inside = [r for r in trace if began <= r["t0"] <= ended and "t1" in r]
    durations = [r["t1"] - r["t0"] for r in inside]
    by_page: dict[str, float] = {}
    for r in inside:
        by_page[r["page"]] = max(by_page.get(r["page"], 0.0), r["t1"] - r["t0"])
    asked: dict[str, float] = {}
    offered: dict[str, tuple[float, str]] = {}
    for r in sorted(trace, key=lambda r: r["t0"]):
        for m in r.get("marks", []):
            if m["name"] == "start" and r["session"] not in asked:
                asked[r["session"]] = r["t0"]           # the run that handled the click: about when it arrived
            elif (m["name"] in ("results_link", "results") and r["session"] in asked and r["session"] not in offered
                  and m.get("run")):
                offered[r["session"]] = (r["t1"], m["run"])
    groups: dict[str, list[str]] = {}
    for session, (_, run) in offered.items():
        groups.setdefault(run, []).append(session)
    biggest = max(groups.values(), key=len, default=[])
    first = min((offered[s][0] for s in biggest), default=None)
    lags = [offered[s][0] - max(first, asked[s]) for s in biggest]
    return {
        "server_page_runs": len(inside),
        "server_page_run_max_s": round(max(durations), 2) if durations else None,
        "server_page_run_p95_s": round(percentile(durations, 95), 2) if durations else None,
        "server_page_run_max_by_page_s": {k: round(v, 2) for k, v in sorted(by_page.items())},
        "server_start_to_results_s": sorted(round(offered[s][0] - asked[s], 2) for s in offered),
        "server_shared_sessions": len(biggest),
        "server_shared_lag_max_s": round(max(lags), 2) if lags else None,
        "server_shared_last_minus_first_s": round(max(offered[s][0] for s in biggest) - first, 1)
        if len(biggest) > 1 else None,
    }


def markdown(summary: dict) -> str:
    """A short table for stdout (and for the docs, once measured on a quiet machine)."""
    lines = ["| session | choice | Start → own results (s) | saw queue | shared | probes max (s) | errors |",
             "|---|---|---|---|---|---|---|"]
    for row in summary["per_session"]:
        lines.append(f"| {row['session']} | {row['choice']} | {row.get('start_to_results_s') or '—'} | "
                     f"{'yes' if row.get('saw_queue') else 'no'} | {'yes' if row.get('shared_seen') else 'no'} | "
                     f"{row.get('probe_max_s') or '—'} | {len(row.get('errors') or [])} |")
    f, s, c = summary["figures"], summary["server"], summary["client"]

    def v(value, unit=" s"):
        return "—" if value is None else f"{value}{unit}"

    lines += ["", "| figure | value |", "|---|---|",
              f"| sessions · scenario · mode | {summary['sessions']} · {summary['scenario']} · {summary['mode']} |",
              f"| Start click → all finished | {v(f['click_to_all_finished_s'])} |",
              f"| suggested sessions: last − first result | {v(f['shared_lag_s'])} |",
              f"| page response (click → heading), max · p95 · probes | {v(f['page_response_max_s'])} · "
              f"{v(f['page_response_p95_s'])} · {f['page_probes']} |",
              *([f"| server's side (app trace): script run max · p95 · runs | {v(f['server_page_run_max_s'])} · "
                 f"{v(f['server_page_run_p95_s'])} · {f['server_page_runs']} |",
                 f"| server's side: suggested sessions' lag after their run existed and they asked, max · "
                 f"last − first | {v(f['server_shared_lag_max_s'])} · {v(f['server_shared_last_minus_first_s'])} "
                 f"({f['server_shared_sessions']} sessions) |"] if "server_page_run_max_s" in f else []),
              *([f"| observer's page response (own browser, normal priority), max · p95 · probes · timeouts | "
                 f"{v(f['observer_page_response_max_s'])} · {v(f['observer_page_response_p95_s'])} · "
                 f"{f['observer_page_probes']} · {f['observer_timeouts']} |"] if "observer_page_probes" in f else []),
              f"| server RSS: healthy → after one visit → peak | {v(s['rss_healthy_mb'], '')} → "
              f"{v(s['rss_after_preflight_mb'], '')} → {v(s['rss_peak_mb'], ' MB')} "
              f"((peak − one visit) / sessions: {v(s['rss_per_session_mb'], ' MB')}) |",
              f"| server CPU during the load · per session | {v(s['cpu_load_s'])} · {v(s['cpu_per_session_s'])} |",
              f"| chromium + driver (the client) CPU · peak RSS sum | {v(c['cpu_s'])} · {v(c['rss_peak_mb'], ' MB')} |",
              f"| machine | {summary['machine']}; client at nice {summary.get('client_nice', 0)}"
              + (f"; server on cores {summary['server_cpus']}, client on {summary['client_cpus']}"
                 if summary.get("server_cpus") else "") + " |",
              "", "checks: " + ", ".join(f"{k} {'✓' if ok else '✗'}" for k, ok in summary["checks"].items()),
              "bars: " + (", ".join(f"{k} {'✓' if ok else '✗'}" for k, ok in summary["bars"].items()) or "none")]
    return "\n".join(lines)


def choice_dict(choice: Choice) -> dict:
    return {**asdict(choice), "text": choice.text()}


__all__ = ["Bars", "CLASSES", "Choice", "choice_dict", "evaluate", "markdown", "overlaps", "percentile", "plan",
           "prepared_records", "read_records", "record_key", "server_figures"]
