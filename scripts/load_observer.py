"""One more student beside a load test, with a browser of their own: page response as a student sees it.

    python -m scripts.load_observer --url http://127.0.0.1:8501 --out OBS.json --stop STOPFILE [--every 5]

Started by `scripts/load_test.py --observer` in a session (scheduler autogroup) of its own at normal priority and
left out of `--client-nice`: on a Space each student's browser runs on their own machine, while the load test's 16
sessions share this machine's cores with the server, so their probes also time their own starved rendering. This
one opens the app, waits for the home page, then until STOPFILE exists clicks Choose and back to the home page
every ``--every`` seconds, timing click → heading (`load_test.navigate`, the same probe). It never presses Start:
it adds one idle session's page work to the server's load. Each probe is written to OUT as it is taken
(``[wall-clock time, seconds]``), so a killed observer loses nothing; the load test keeps those inside its load.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from scripts.load_test import CHROMIUM, CHROMIUM_ARGS, HOME_READY, navigate


async def observe(url: str, out: Path, stop: Path, every: float, timeout_s: float) -> None:
    from playwright.async_api import async_playwright

    state = {"url": url, "ready_at": None, "probes": [], "timeouts": 0}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context(viewport={"width": 1400, "height": 1000})).new_page()
            await page.goto(url, timeout=timeout_s * 1000)
            await page.get_by_text(HOME_READY).first.wait_for(timeout=timeout_s * 1000)
            state["ready_at"] = time.time()
            out.write_text(json.dumps(state))
            while not stop.exists():
                for target in ("choose", "home"):
                    began = time.time()
                    try:
                        seconds = await navigate(page, target, timeout_s)
                    except Exception:  # noqa: BLE001 — a page that never showed counts as the timeout
                        seconds = timeout_s
                        state["timeouts"] += 1
                    state["probes"].append([round(began, 3), round(seconds, 3)])
                    out.write_text(json.dumps(state))
                await asyncio.sleep(every)
        finally:
            await browser.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--stop", type=Path, required=True, help="the observer ends once this file exists")
    parser.add_argument("--every", type=float, default=5.0)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    asyncio.run(observe(args.url, args.out, args.stop, args.every, args.timeout))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
