"""Load test in a real browser: N sessions on one app server press Start together; what each one sees, how fast.

    python -m scripts.load_test --sessions 4 --fast                         # hardening scenario: class k per session
    python -m scripts.load_test --sessions 16 --real --scenario classroom   # 12 on the suggested class, 4 their own
    python -m scripts.load_test --sessions 16 --fast --scenario classroom --shared-text shared --enforce-bars
    python -m scripts.load_test --sessions 16 --real --scenario classroom --shared-text shared --client-nice 19

Starts `streamlit run app/streamlit_app.py` on 127.0.0.1 (a fresh temporary run folder; UNLEARNING_LAB_FAST=1 with
--fast, unset with --real), opens N isolated contexts (N Streamlit sessions) in one headless Chromium, lets each
make its choice (scripts/load_plan.py: the scenarios), and when all are ready clicks Start in every one. Per
session it records the Start click → its Results page showing the gauges of its own run (the header names its own
forget set, method and seed, never another session's), whether it saw "in the queue", every exception or error box
seen on any page, and a page-response probe running all through the load: every --probe-every seconds it clicks a
sidebar link away and back and times click → that page's heading. The server times its own script runs
(UNLEARNING_LAB_TRACE, app/trace.py), so the server's part of each page and of the shared results is reported apart
from the browsers' drawing (which, on one machine, competes with the server for the CPU). Server side: peak VmRSS (sampled every 0.25 s)
and CPU seconds (utime+stime from /proc) of the server process and its children; the browser's own cost is
reported apart (it is the client). The finished run records are copied to --out/records and checked: one group per
choice, identical choices with identical metrics, every run forgot, no two runs on the device at once.
Writes --out/load.json, prints a markdown table; exit 1 when a check fails (or a time bar, with --enforce-bars).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app import trace as app_trace
from scripts import load_plan
from scripts.load_plan import Choice
from scripts.load_server import Sampler, start_server

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

# What the script looks for in the page: one place, so a change of wording in the app is one edit here.
NAV = '[data-testid="stSidebarNav"] a'                               # sidebar page links, by their text:
LINKS = {"home": "What is unlearning?", "choose": "1 · Choose what to forget", "run": "2 · Run", "results": "Results"}
HEADINGS = {"home": "Unlearning Lab", "choose": "Choose what to forget", "run": "Run unlearning", "results": "Results"}
HOME_READY = "Original model · test accuracy"        # the home page has loaded the model
CLASS_BOX = '[data-testid="stCheckbox"]'
CHOSEN = "class {name}"                              # the forget-set summary once a class is ticked
SUGGESTION = re.compile(r"suggest", re.I)            # an element of the Choose page that names the suggested class
HYPER_EXPANDER = '[data-testid="stExpander"] summary'
HYPER_TITLE = "Hyperparameters"
NUMBER_INPUT = '[data-testid="stNumberInput"]'         # found by its label text (a <label for=...>, no aria-label)
START = "Start"                                      # the Run page's button
RESULTS_READY = "See the results"                    # the Run page's link once this session's run has metrics
                                                     # (a shared result: Start opens the Results page itself)
QUEUED = "in the queue"
GAUGES = ".js-plotly-plot .indicatorlayer"
RESULTS_HEADER = re.compile(r" on .*seed \d+")       # "**WSS-CL** on **class Trouser** · cpu · seed 0"
RUN_PICKER = '[data-testid="stSelectbox"] [role="combobox"]'   # Streamlit's select box: its value is the input's
NOT_MINE = "· earlier"                               # the run picker's mark of another session's run
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'


# ---------------------------------------------------------------------------------------------- browser
async def navigate(page, target: str, timeout_s: float) -> float:
    """Click the sidebar link to ``target``; seconds until that page's heading is visible."""
    began = time.time()
    await page.locator(NAV, has_text=LINKS[target]).first.click(timeout=timeout_s * 1000)
    await page.locator("h1", has_text=HEADINGS[target]).first.wait_for(timeout=timeout_s * 1000)
    return time.time() - began


# One round trip per look at a page: the error boxes' texts and whether the texts the loop waits for are there.
# (Three Playwright locator queries per session every half second — each a walk of the page's DOM by the text
# engine plus a hop through the driver — were much of the client's CPU with 16 sessions on shared cores.)
LOOK = """([errors, texts]) => {
    const body = document.body ? document.body.textContent : "";
    const h1 = document.querySelector("h1");
    return {errors: Array.from(document.querySelectorAll(errors), e => e.innerText),
            found: texts.map(t => body.includes(t)), heading: h1 ? h1.textContent.trim() : ""};
}"""


async def look(page, row: dict, texts: tuple[str, ...] = ()) -> tuple[list[bool], str]:
    """Record any exception or error box on the page (once per distinct text); whether each of ``texts`` is on it,
    and the page's heading."""
    try:
        seen = await page.evaluate(LOOK, [ERRORS, list(texts)])
    except Exception:  # noqa: BLE001 — the page was replaced while it was read: read it next time
        return [False] * len(texts), ""
    for text in seen["errors"]:
        text = " ".join(text.split())[:400]
        if text not in row["errors"]:
            row["errors"].append(text)
    return seen["found"], seen["heading"]


async def scan_errors(page, row: dict):
    await look(page, row)


async def suggested_class(browser, url: str, timeout_s: float) -> tuple[str, str, float]:
    """The class the Choose page suggests (first session's view), or the fallback when it suggests none."""
    context = await browser.new_context()
    page = await context.new_page()
    began = time.time()
    try:
        await page.goto(url, timeout=timeout_s * 1000)
        await page.get_by_text(HOME_READY).first.wait_for(timeout=timeout_s * 1000)
        first_page = time.time() - began
        await navigate(page, "choose", timeout_s)
        await page.wait_for_timeout(1500)
        for text in await page.get_by_text(SUGGESTION).all_inner_texts():
            named = [c for c in load_plan.CLASSES if c in text]
            if named:
                return named[0], f"the Choose page: {' '.join(text.split())[:120]!r}", first_page
        return load_plan.FALLBACK_SUGGESTED, "fallback: the Choose page names no suggested class", first_page
    finally:
        await context.close()


class Load:
    """What the sessions share: the start gate, the end of the load, the settings."""

    def __init__(self, args, choices: list[Choice], sampler: Sampler):
        self.args, self.choices, self.sampler = args, choices, sampler
        self.ready, self.done = 0, 0
        self.all_ready, self.all_done = asyncio.Event(), asyncio.Event()
        self.clicked_at: float | None = None
        self.done_at: float | None = None               # wall clock when the last session had its results

    def count(self, attribute: str, event: asyncio.Event):
        setattr(self, attribute, getattr(self, attribute) + 1)
        if getattr(self, attribute) == len(self.choices):
            if attribute == "done":
                self.done_at = time.time()
            event.set()


async def choose(page, choice: Choice, timeout_s: float):
    await navigate(page, "choose", timeout_s)
    for attempt in range(5):                  # a click during a rerun can be lost: tick until the summary shows it
        # the box whose label is exactly the class name ("Shirt" is also a substring of "T-shirt/top")
        await page.locator(CLASS_BOX).filter(has=page.get_by_text(choice.class_name, exact=True)).first.click()
        try:
            await page.get_by_text(CHOSEN.format(name=choice.class_name)).first.wait_for(timeout=20_000)
            break
        except Exception:
            if attempt == 4:
                raise
    await navigate(page, "run", timeout_s)
    await page.get_by_role("button", name=START).wait_for(timeout=timeout_s * 1000)
    if choice.kind in ("seed", "hyperparameter"):
        await page.locator(HYPER_EXPANDER, has_text=HYPER_TITLE).first.click()
        label, value = ("seed", choice.seed) if choice.kind == "seed" else choice.field
        box = page.locator(NUMBER_INPUT).get_by_label(label, exact=True).first
        await box.fill(str(value))
        await box.press("Enter")
        await page.wait_for_timeout(2000)
        shown = await box.input_value()
        if float(shown) != float(value):
            raise RuntimeError(f"typed {label}={value} but the form shows {shown}")
    await page.wait_for_timeout(1500)


async def read_results(page, load: Load, k: int, row: dict):
    """On the Results page: the gauges, and a header that names this session's choice and no other's."""
    choice = load.choices[k]
    await page.locator(GAUGES).first.wait_for(timeout=load.args.page_timeout * 1000)
    header = " ".join((await page.locator('[data-testid="stMarkdownContainer"]', has_text=RESULTS_HEADER)
                       .first.inner_text(timeout=30_000)).split())
    picker = " ".join((await page.locator(RUN_PICKER).first.input_value(timeout=30_000)).split())
    row["results_header"], row["run_picker"] = header[:160], picker[:160]
    own = (load_plan.METHOD_LABEL in header and CHOSEN.format(name=choice.class_name) in header
           and f"seed {choice.seed}" in header)
    others = {c.class_name for c in load.choices} - {choice.class_name}
    wrong = [c for c in others if CHOSEN.format(name=c) in header]
    shared = bool(load.args.shared_text) and await page.get_by_text(load.args.shared_text).count() > 0
    row["shared_seen"] = row.get("shared_seen", False) or shared
    if NOT_MINE in picker and not shared:
        wrong.append(f"the picker shows another session's run: {picker[:80]}")
    row["own_choice_shown"] = row.get("own_choice_shown", True) and own
    row["other_choice_shown"] = sorted(set(row.get("other_choice_shown", [])) | set(wrong))


async def session(browser, load: Load, k: int) -> dict:
    args, choice = load.args, load.choices[k]
    row = {"session": k, "choice": choice.text(), "errors": [], "probes": [], "saw_queue": False,
           "start_to_results_s": None}
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(args.page_timeout * 1000)
    began = time.time()
    try:
        await page.goto(load.args.url, timeout=args.setup_timeout * 1000)
        await page.get_by_text(HOME_READY).first.wait_for(timeout=args.setup_timeout * 1000)
        await choose(page, choice, args.setup_timeout)
        row["ready_s"] = round(time.time() - began, 1)
        print(f"session {k} ({choice.text()}): ready after {row['ready_s']} s", flush=True)
    except Exception as error:  # noqa: BLE001 — recorded; this session does not start, the others do
        row["setup_error"] = f"{type(error).__name__}: {str(error)[:300]}"
        await page.screenshot(path=str(args.out / f"session-{k}-setup-failed.png"), full_page=True)
    finally:
        load.count("ready", load.all_ready)   # counted even on failure, so the others never wait forever
    await load.all_ready.wait()
    await scan_errors(page, row)
    if "setup_error" in row:
        load.count("done", load.all_done)
        await context.close()
        return row
    clicked = time.time()
    load.clicked_at = load.clicked_at or clicked
    await page.get_by_role("button", name=START).click()
    # the sessions' probes are spread evenly over one period (session k first probes (k+1)/N of it after Start):
    # students do not click in step, and N pages switched in the same instant time the harness's own burst
    where, finished = "run", False
    next_probe = clicked + (k + 1) / len(load.choices) * args.probe_every
    deadline = clicked + args.wait
    try:
        while time.time() < deadline and not (finished and load.all_done.is_set()):
            (queued, ready), heading = await look(page, row, (QUEUED, RESULTS_READY))
            if not finished and where == "run":
                if queued:
                    row["saw_queue"] = True
                if ready or heading == HEADINGS["results"]:     # a shared result: Start opened Results itself
                    if heading != HEADINGS["results"]:
                        await navigate(page, "results", args.page_timeout)
                    where = "results"
                    await read_results(page, load, k, row)
                    row["start_to_results_s"] = round(time.time() - clicked, 1)
                    print(f"session {k} ({choice.text()}): own results {row['start_to_results_s']} s after Start",
                          flush=True)
                    finished = True
                    load.count("done", load.all_done)
                    await scan_errors(page, row)
                    continue
            if time.time() >= next_probe:                         # away and back: both navigations are timed
                back = "results" if finished else "run"
                for target in ("choose", back):
                    try:
                        row["probes"].append(round(await navigate(page, target, args.page_timeout), 2))
                    except Exception:  # noqa: BLE001 — a probe that never showed its page counts as the timeout
                        row["probes"].append(float(args.page_timeout))
                        row.setdefault("probe_timeouts", 0)
                        row["probe_timeouts"] += 1
                    await scan_errors(page, row)
                where, next_probe = back, max(next_probe + args.probe_every, time.time())
                if finished:
                    try:
                        await read_results(page, load, k, row)   # still its own run, while the others finish
                    except Exception as error:  # noqa: BLE001 — recorded: the Results page did not come back
                        row.setdefault("recheck_errors", []).append(f"{type(error).__name__}: {str(error)[:200]}")
            await page.wait_for_timeout(500 if not finished else 1000)   # after the results: only errors to scan
        if not finished:
            row["timeout"] = f"no own results {args.wait:.0f} s after Start"
            await page.screenshot(path=str(args.out / f"session-{k}-timeout.png"), full_page=True)
    except Exception as error:  # noqa: BLE001 — the row (probes included) is kept; the check fails on "crash"
        row["crash"] = f"{type(error).__name__}: {str(error)[:300]}"
        await page.screenshot(path=str(args.out / f"session-{k}-crash.png"), full_page=True)
    try:
        if k == 0 or row["errors"] or row.get("other_choice_shown"):
            await page.screenshot(path=str(args.out / f"session-{k}-last.png"), full_page=True)
    finally:
        if not finished:
            load.count("done", load.all_done)
        await context.close()
    row["probe_max_s"] = max(row["probes"], default=None)
    return row


async def drive(load: Load) -> tuple[list[dict], dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            # one visit first, in either scenario: it reads the suggestion and gives the one-session RSS baseline
            name, source, first = await suggested_class(browser, load.args.url, load.args.setup_timeout)
            if load.args.scenario != "classroom":
                name, source = None, f"not used (hardening scenario); {source}"
            load.choices = load_plan.plan(load.args.scenario, load.args.sessions, name or load_plan.FALLBACK_SUGGESTED)
            load.sampler.mark("after_preflight")
            info = {"suggested": name, "suggested_source": source, "first_page_s": first and round(first, 1)}
            tasks = [session(browser, load, k) for k in range(len(load.choices))]
            watcher = asyncio.create_task(mark_when(load))
            rows = await asyncio.gather(*tasks, return_exceptions=True)
            watcher.cancel()
            if load.all_done.is_set() and "all_done" not in load.sampler.marks:
                load.sampler.mark("all_done")
        finally:
            await browser.close()
    return [r if isinstance(r, dict) else {"session": k, "choice": load.choices[k].text(), "errors": [],
                                           "crash": f"{type(r).__name__}: {r}"} for k, r in enumerate(rows)], info


async def mark_when(load: Load):
    await load.all_ready.wait()
    load.sampler.mark("start_clicked")
    await load.all_done.wait()
    load.sampler.mark("all_done")


# ---------------------------------------------------------------------------------------------- main
def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=4)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--fast", dest="fast", action="store_true", default=True,
                      help="UNLEARNING_LAB_FAST=1: tiny runs (the default)")
    mode.add_argument("--real", dest="fast", action="store_false", help="the real defaults (UNLEARNING_LAB_FAST unset)")
    parser.add_argument("--scenario", choices=("hardening", "classroom"), default="hardening")
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "load")
    parser.add_argument("--wait", type=float, default=None,
                        help="seconds a session waits for its results after Start (default 900 fast, 3600 real)")
    parser.add_argument("--probe-every", type=float, default=5.0,
                        help="seconds between page-response probes (one away-and-back each), per session; the "
                             "sessions' probes are spread evenly over this period")
    parser.add_argument("--page-timeout", type=float, default=120.0, help="seconds one navigation may take")
    parser.add_argument("--setup-timeout", type=float, default=300.0,
                        help="seconds a session's setup step (first page, tick, open Run) may take before Start")
    parser.add_argument("--shared-text", default=None,
                        help="text the Results page shows on a shared (deduplicated) result, e.g. 'shared'; given, "
                             "identical choices may be served by one run record")
    parser.add_argument("--client-nice", type=int, default=0, choices=range(0, 20), metavar="0-19",
                        help="run the client (this script and its Chromium, niceness and scheduler autogroup) at "
                             "this niceness, the server at the caller's: on one machine the N browsers otherwise "
                             "take most of the CPU a hosted server has to itself (its visitors' browsers run on "
                             "their own machines)")
    parser.add_argument("--split-cpus", type=int, default=0, metavar="K",
                        help="the server (every thread, the worker's included) on the first K cores only and the "
                             "client (this script, the observer, the browser) on the others: on one machine, the "
                             "closest thing to a hosted server whose visitors' browsers run on their own machines — "
                             "neither side can take the other's cores, whatever its priority")
    parser.add_argument("--observer", action="store_true",
                        help="one more student with a browser of their own (scripts/load_observer.py: its own "
                             "session at normal priority, not reniced by --client-nice), probing pages all through "
                             "the load; its page response is reported beside the sessions' and has the same bar")
    parser.add_argument("--observer-every", type=float, default=5.0,
                        help="seconds between the observer's probes (its own pace: one student clicking often)")
    parser.add_argument("--enforce-bars", action="store_true", help="exit 1 when a time bar is missed too")
    parser.add_argument("--bar-all-s", type=float, default=None, help="every session's results within (classroom: 180)")
    parser.add_argument("--bar-shared-lag-s", type=float, default=None, help="classroom: 10")
    parser.add_argument("--bar-page-s", type=float, default=2.0)
    args = parser.parse_args(argv)
    if args.split_cpus and not 0 < args.split_cpus < len(os.sched_getaffinity(0)):
        parser.error(f"--split-cpus must leave a core to each side: 1..{len(os.sched_getaffinity(0)) - 1}")
    if not 1 <= args.sessions <= 64:
        parser.error(f"--sessions must lie in 1..64, not {args.sessions}")
    if args.probe_every <= 0 or args.observer_every <= 0 or args.page_timeout <= 0 or args.setup_timeout <= 0 or (args.wait is not None and args.wait <= 0):
        parser.error("--probe-every, --page-timeout, --setup-timeout and --wait must be positive")
    if args.scenario == "classroom":
        args.bar_all_s = 180.0 if args.bar_all_s is None else args.bar_all_s
        args.bar_shared_lag_s = 10.0 if args.bar_shared_lag_s is None else args.bar_shared_lag_s
    args.wait = args.wait or (900.0 if args.fast else 3600.0)
    try:
        load_plan.plan(args.scenario, args.sessions)          # bad sizes refused before anything starts
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv=None) -> int:
    args = parse(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"needs Debian's chromium at {CHROMIUM}")
    args.out.mkdir(parents=True, exist_ok=True)
    # a SIGTERM (e.g. from `timeout`) unwinds through the finally below: the server is stopped, not orphaned
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runs = Path(tempfile.mkdtemp(prefix="load-runs-"))
    trace_path = args.out / "trace.jsonl"               # the server times its own script runs (app/trace.py)
    trace_path.unlink(missing_ok=True)
    server_cpus = client_cpus = None
    if args.split_cpus:                  # two machines in one: the server on its cores, the browsers on the others
        cores = sorted(os.sched_getaffinity(0))
        server_cpus, client_cpus = set(cores[:args.split_cpus]), set(cores[args.split_cpus:])
    process, args.url = start_server(runs, args.out / "server.log", args.fast, trace=trace_path, cpus=server_cpus)
    if client_cpus:                      # this script, the observer and the browser (all started from here on)
        os.sched_setaffinity(0, client_cpus)
    observer = observer_out = observer_stop = None
    if args.observer:                # started before this script renices itself: it keeps normal priority
        observer_out, observer_stop = args.out / "observer.json", args.out / "observer.stop"
        observer_out.unlink(missing_ok=True)
        observer_stop.unlink(missing_ok=True)
        observer = subprocess.Popen([sys.executable, "-m", "scripts.load_observer", "--url", args.url, "--out",
                                     str(observer_out), "--stop", str(observer_stop), "--every", str(args.observer_every),
                                     "--timeout", str(args.page_timeout)], cwd=REPO, start_new_session=True,
                                    stdout=open(args.out / "observer.log", "w"), stderr=subprocess.STDOUT)
    if args.client_nice:            # from here on this process and what it starts (the browser) yield to the server
        os.nice(args.client_nice)
    sampler = Sampler(process.pid, args.client_nice, apart=[observer.pid] if observer else [])
    sampler.start()
    sampler.mark("healthy")
    began = time.time()
    load = Load(args, [], sampler)
    try:
        rows, info = asyncio.run(drive(load))
        time.sleep(2)                                        # the last records are written after the page showed
    finally:
        sampler.mark("end")
        sampler.stop.set()
        if observer is not None:
            observer_stop.touch()
            try:
                observer.wait(60)
            except subprocess.TimeoutExpired:
                observer.kill()
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    records = load_plan.read_records(runs)
    if args.shared_text:            # shared results may come from the app's read-only prepared runs (app/sharing.py)
        prepared = [REPO / "app/tour/run", REPO / "app/tour/compare",
                    Path(os.environ.get("UNLEARNING_LAB_PREPARED") or REPO / "prepared")]
        served = load_plan.prepared_records(prepared, load.choices, args.fast)
        records = sorted(records + served, key=lambda r: r.get("saved") or 0)
    (args.out / "records").mkdir(exist_ok=True)
    for n, record in enumerate(records):
        shutil.copy(Path(record["path"]) / "run.json", args.out / "records" / f"{n:02d}-run.json")
    probes = [p for r in rows for p in r.get("probes", [])]
    bars = load_plan.Bars(args.bar_all_s, args.bar_shared_lag_s, args.bar_page_s)
    checks, bar_results, figures = load_plan.evaluate(load.choices, rows, records, probes,
                                                      shared=bool(args.shared_text), bars=bars)
    figures.update(load_plan.server_figures(app_trace.read(trace_path), load.clicked_at, load.done_at))
    if bars.page_response_s is not None and figures.get("server_page_run_max_s") is not None:
        bar_results["server_page_run_s"] = figures["server_page_run_max_s"] <= bars.page_response_s
    if bars.shared_lag_s is not None and figures.get("server_shared_lag_max_s") is not None:
        bar_results["server_shared_lag_s"] = figures["server_shared_lag_max_s"] <= bars.shared_lag_s
    if observer is not None:
        figures.update(observer_figures(observer_out, load.clicked_at, load.done_at))
        if bars.page_response_s is not None:
            bar_results["observer_page_response_s"] = figures["observer_page_response_max_s"] is not None and \
                figures["observer_page_response_max_s"] <= bars.page_response_s
    checks["no_session_crashed"] = not any(r.get("crash") or r.get("setup_error") or r.get("timeout") for r in rows)
    load_end = "all_done" if "all_done" in sampler.marks else "end"
    load_start = "start_clicked" if "start_clicked" in sampler.marks else "healthy"
    cpu_load = sampler.cpu_between("server", load_start, load_end)
    rss_base = sampler.marks["after_preflight"]["rss_mb"] if "after_preflight" in sampler.marks else None
    server = {"rss_healthy_mb": sampler.marks["healthy"]["rss_mb"], "rss_after_preflight_mb": rss_base,
              "rss_peak_mb": round(sampler.rss_peak, 1), "rss_end_mb": sampler.marks["end"]["rss_mb"],
              # what each session adds above one visit (model, caches and the worker already loaded then)
              "rss_per_session_mb": round((sampler.rss_peak - rss_base) / args.sessions, 1)
              if rss_base is not None else None,
              "tree_rss_peak_mb": round(sampler.tree_rss_peak["server"], 1),
              "cpu_setup_s": sampler.cpu_between("server", "healthy", load_start),
              "cpu_load_s": cpu_load, "cpu_per_session_s": round(cpu_load / args.sessions, 1),
              "cpu_total_s": sampler.cpu_between("server", "healthy", "end")}
    client = {"cpu_s": sampler.cpu_between("client", "healthy", "end"),
              "cpu_load_s": sampler.cpu_between("client", load_start, load_end),
              "rss_peak_mb": round(sampler.tree_rss_peak["client"], 1)}
    summary = {"scenario": args.scenario, "sessions": args.sessions, "mode": "fast" if args.fast else "real",
               "shared_text": args.shared_text, "url": args.url, **info,
               "total_s": round(time.time() - began, 1), "machine": f"{os.cpu_count()} CPU cores, load average "
               f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end",
               "worker": os.environ.get("UNLEARNING_LAB_WORKER") or "thread",
               "worker_nice": os.environ.get("UNLEARNING_LAB_WORKER_NICE"), "client_nice": args.client_nice,
               "server_cpus": sorted(server_cpus) if server_cpus else None,
               "client_cpus": sorted(client_cpus) if client_cpus else None,
               "choices": [load_plan.choice_dict(c) for c in load.choices], "per_session": rows,
               "figures": figures, "server": server, "client": client, "checks": checks, "bars": bar_results,
               "records": [{k: v for k, v in r.items() if k != "metrics_all"} for r in records]}
    (args.out / "load.json").write_text(json.dumps(summary, indent=2, default=str))
    print(load_plan.markdown(summary))
    print(f"\nfull summary: {args.out / 'load.json'}; run records: {args.out / 'records'}")
    shutil.rmtree(runs, ignore_errors=True)
    failed = not all(checks.values()) or (args.enforce_bars and not all(bar_results.values()))
    return 1 if failed else 0


def observer_figures(path: Path, began: float | None, ended: float | None) -> dict:
    """The observer's probes taken between the first Start click and the last session's results."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        state = {"probes": [], "timeouts": 0}
    ended = ended or time.time()
    inside = [s for t, s in state["probes"] if began is not None and began <= t <= ended]
    return {"observer_page_response_max_s": round(max(inside), 2) if inside else None,
            "observer_page_response_p95_s": round(load_plan.percentile(inside, 95), 2) if inside else None,
            "observer_page_probes": len(inside), "observer_timeouts": state.get("timeouts", 0)}


if __name__ == "__main__":
    sys.exit(main())
