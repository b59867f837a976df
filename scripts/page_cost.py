"""What one page switch costs, server and browser apart: the sizing figure behind the classroom load test.

    python -m scripts.page_cost                      # one session, the real defaults, 10 round trips Choose ↔ Results
    python -m scripts.page_cost --sessions 16 --trips 3   # 16 sessions switching at the same instant
    python -m scripts.page_cost --fast --trips 1     # tiny runs (what tests/test_load_script.py uses)

N sessions (contexts of one headless Chromium) on an otherwise idle server each tick the suggested class
(Trouser) and press Start (served at once from the guided tour's prepared run; in fast mode the first computes and
the others share it), open Results, then all go Choose → Results and back ``--trips`` times, every switch at the
same instant in every session. Per page, the median over the trips of: the slowest session's wall time from the
click to the page's heading and to a settled page (no script run in progress, every chart drawn), and per session
the server's CPU seconds (the Streamlit process: script runs and websocket), the server's own script-run time
(``app/trace.py``) and the browser's CPU seconds (Chromium's processes: renderers, compositor, browser).
The first session's last Results view is saved as <out>/results.png.

On one machine the browsers and the server share the cores: N sessions switching twice every P seconds ask the
cores for about N x 2 x (browser + server CPU per switch) / P CPU-seconds per second, which is what the classroom
load test's own browsers (``--probe-every``) cost on top of the app. On a hosted Space the browsers' part runs on
the students' machines; the server's part is what the Space carries.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from app import trace as app_trace
from scripts import load_test as lt
from scripts.load_plan import Choice
from scripts.load_server import process_tree, start_server

REPO = Path(__file__).resolve().parent.parent


def cpu(root: int) -> float:
    return sum(c for c, _ in process_tree(root).values())


def is_chromium(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().startswith("chrom")
    except OSError:
        return False


async def settle(page, timeout_s: float = 60.0):
    """Until Streamlit says no script runs and the page's charts have been drawn (two quiet checks 0.2 s apart)."""
    deadline, quiet = time.time() + timeout_s, 0
    while time.time() < deadline and quiet < 2:
        running = await page.locator('[data-testid="stStatusWidget"]').count()
        pending = await page.locator(".stPlotlyChart:not(:has(.js-plotly-plot))").count()
        quiet = quiet + 1 if not running and not pending else 0
        await page.wait_for_timeout(200)


async def measure(args) -> dict:
    from playwright.async_api import async_playwright

    runs = Path(tempfile.mkdtemp(prefix="page-cost-"))
    trace_path = args.out / "trace.jsonl"
    trace_path.unlink(missing_ok=True)
    server, url = start_server(runs, args.out / "server.log", args.fast, trace=trace_path)
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=lt.CHROMIUM, headless=True, args=lt.CHROMIUM_ARGS)

            def browser_cpu():            # Chromium's processes (browser, renderers, utilities), not the driver
                return sum(c for pid, (c, _) in process_tree(os.getpid()).items() if is_chromium(pid))

            async def open_session():
                context = await browser.new_context(viewport={"width": 1400, "height": 1000})
                page = await context.new_page()
                page.set_default_timeout(args.timeout * 1000)
                await page.goto(url)
                await page.get_by_text(lt.HOME_READY).first.wait_for()
                await lt.choose(page, Choice("Trouser"), args.timeout)      # the load test's own steps
                return page

            pages = [await open_session() for _ in range(args.sessions)]     # one after the other: setup, untimed
            for page in pages:                    # the first computes (fast mode) or is served; the others share it
                await page.get_by_role("button", name=lt.START).click()
                # a shared result opens Results at once; a computed run offers a link on the Run page
                ready = page.get_by_text(lt.RESULTS_READY).or_(page.locator("h1", has_text=lt.HEADINGS["results"]))
                await ready.first.wait_for(timeout=args.timeout * 1000 * 10)
            for page in pages:
                if not await page.locator("h1", has_text=lt.HEADINGS["results"]).count():
                    await lt.navigate(page, "results", args.timeout)
                await page.locator(lt.GAUGES).first.wait_for()
                await settle(page)
            await pages[0].wait_for_timeout(2000)
            rows: dict[str, list[dict]] = {"choose": [], "results": []}

            async def switch(page, target):
                began = time.time()
                heading = await lt.navigate(page, target, args.timeout)
                await settle(page)
                return heading, time.time() - began - 0.4          # the two quiet checks are not the page's time

            for _ in range(args.trips):
                for target in ("choose", "results"):
                    await pages[0].wait_for_timeout(1000)        # idle first: what follows is this switch's cost
                    s0, b0, t0 = cpu(server.pid), browser_cpu(), time.time()
                    timed = await asyncio.gather(*[switch(page, target) for page in pages])   # all at once
                    wall = max(settled for _, settled in timed)
                    await pages[0].wait_for_timeout(300)
                    n = len(pages)
                    rows[target].append({"heading_s": max(h for h, _ in timed), "settled_s": wall,
                                         "server_cpu_s": (cpu(server.pid) - s0) / n,
                                         "browser_cpu_s": (browser_cpu() - b0) / n, "t0": t0})
            await pages[0].screenshot(path=str(args.out / "results.png"), full_page=True)
            await browser.close()
    finally:
        server.terminate()
        server.wait(30)
    traced = app_trace.read(trace_path)
    out = {}
    for target, trips in rows.items():
        script = []
        for trip in trips:          # the script runs that started during this switch (a page switch may rerun twice)
            runs_in = [r for r in traced if trip["t0"] <= r["t0"] <= trip["t0"] + trip["settled_s"] + 0.5]
            script.append(sum(r["t1"] - r["t0"] for r in runs_in) / args.sessions)
        med = {k: round(statistics.median(t[k] for t in trips), 3)
               for k in ("heading_s", "settled_s", "server_cpu_s", "browser_cpu_s")}
        out[target] = {**med, "server_script_s": round(statistics.median(script), 3), "trips": len(trips)}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trips", type=int, default=10)
    parser.add_argument("--sessions", type=int, default=1,
                        help="N sessions (contexts of one Chromium) that switch page at the same instant; CPU and "
                             "script time are per session, the times are the slowest session's")
    parser.add_argument("--fast", action="store_true", help="UNLEARNING_LAB_FAST=1 (tiny runs)")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "page-cost")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= 64 or args.trips < 1:
        parser.error("--sessions must lie in 1..64 and --trips be at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(measure(args))
    (args.out / "page_cost.json").write_text(json.dumps({"sessions": args.sessions, "mode": "fast" if args.fast
                                                          else "real", "pages": result}, indent=2))
    print(f"{args.sessions} session(s) switching together, median of {args.trips} trips; CPU and script time per session")
    print("| page | click → heading (s) | click → settled (s) | server CPU (s) | server script runs (s) | browser CPU (s) |")
    print("|---|---|---|---|---|---|")
    for target, r in result.items():
        print(f"| {target} | {r['heading_s']} | {r['settled_s']} | {r['server_cpu_s']} | {r['server_script_s']} | "
              f"{r['browser_cpu_s']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
