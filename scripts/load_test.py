"""Load test: N browser sessions at once against one app server, each picking a different class and running.

    python -m scripts.load_test                 # 4 sessions, WSS-CL (fast configs), classes 0..3
    python -m scripts.load_test --sessions 6 --out artifacts/load

Starts `streamlit run app/streamlit_app.py` with UNLEARNING_LAB_FAST=1 on a free port (a temporary run folder),
opens N isolated browser contexts (N Streamlit sessions) in one headless Chromium, and in each, at the same
time: tick class k, open Run, click Start, wait for "See the results", open Results. Checks:
  - every session's Results page names its own class and no other session's (isolation);
  - N finished run records on disk, one per class, owned by N different sessions, each forgetting (UA above
    the original's);
  - the runs queued: no two ran at the same time (each started after the previous one saved its model), and
    at least one session saw "in the queue";
  - the page stayed responsive (time to open Results after the run ended);
and reports the server's peak RSS (VmRSS of the process, sampled every 0.25 s), per-session and total times.
Prints a JSON summary (also written to --out/load.json) and exits 1 when a check fails.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.every, self.samples, self.stop = pid, every, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.samples.append((time.time(), rss_mb(self.pid)))
            time.sleep(self.every)


def start_server(runs: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "UNLEARNING_LAB_FAST": "1", "UNLEARNING_LAB_RUNS": str(runs),
           "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(REPO / ".numba_cache"))}
    process = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(REPO / "app/streamlit_app.py"),
                                "--server.headless", "true", "--server.port", str(port),
                                "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                               cwd=REPO, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"the server did not become healthy in 120 s; see {log}")


async def session(browser, url: str, k: int, out: Path, start_gate: list, wait_s: float) -> dict:
    name = CLASSES[k]
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(120_000)
    row = {"session": k, "class": name}
    t0 = time.time()
    try:
        await page.goto(url)
        await page.get_by_text("Original model · test accuracy").wait_for(timeout=180_000)
        await page.locator('[data-testid="stSidebarNav"] a', has_text="Choose what to forget").first.click()
        for attempt in range(5):                  # a click during a rerun can be lost: tick until it shows
            await page.locator('[data-testid="stCheckbox"]', has_text=name).first.click()
            try:
                await page.get_by_text(f"class {name}").first.wait_for(timeout=20_000)
                break
            except Exception:
                if attempt == 4:
                    raise
        await page.locator('[data-testid="stSidebarNav"] a', has_text="Run").first.click()
        await page.get_by_role("button", name="Start").wait_for()
        await page.wait_for_timeout(1500)
    except Exception:
        await page.screenshot(path=str(out / f"session-{k}-setup-failed.png"), full_page=True)
        raise
    finally:
        start_gate[0] += 1                        # counted even on failure, so the others never wait forever
        if start_gate[0] == start_gate[1]:
            start_gate[2].set()
    row["ready_s"] = round(time.time() - t0, 1)
    print(f"session {k} ({name}) ready after {row['ready_s']} s", flush=True)
    await start_gate[2].wait()                    # every session clicks Start at (nearly) the same moment
    clicked = time.time()
    await page.get_by_role("button", name="Start").click()
    saw_queue = False
    deadline = time.time() + wait_s
    while time.time() < deadline:
        if await page.get_by_text("in the queue").count():
            saw_queue = True
        if await page.get_by_text("See the results").count():
            break
        await page.wait_for_timeout(500)
    else:
        await page.screenshot(path=str(out / f"session-{k}-timeout.png"), full_page=True)
        raise TimeoutError(f"session {k}: no results after {wait_s:.0f} s")
    row["start_to_results_s"] = round(time.time() - clicked, 1)
    print(f"session {k} ({name}) results after {row['start_to_results_s']} s", flush=True)
    row["saw_queue"] = saw_queue
    opened = time.time()
    await page.locator('[data-testid="stSidebarNav"] a', has_text="Results").first.click()
    await page.locator(".js-plotly-plot .indicatorlayer").first.wait_for(timeout=120_000)
    row["open_results_s"] = round(time.time() - opened, 1)
    header = await page.locator('[data-testid="stMarkdownContainer"]', has_text=" on ").first.inner_text()
    row["results_header"] = header.strip()[:120]
    others = [CLASSES[j] for j in range(len(CLASSES)) if j != k]
    row["own_class_shown"] = f"class {name}" in header
    row["other_class_shown"] = [c for c in others if f"class {c}" in header]
    await page.screenshot(path=str(out / f"session-{k}-results.png"), full_page=True)
    await context.close()
    return row


async def drive(url: str, sessions: int, out: Path, wait_s: float) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        gate = [0, sessions, asyncio.Event()]     # ready count, sessions, all ready
        rows = await asyncio.gather(*(session(browser, url, k, out, gate, wait_s) for k in range(sessions)),
                                    return_exceptions=True)
        await browser.close()
    return [r if isinstance(r, dict) else {"error": f"{type(r).__name__}: {r}"} for r in rows]


def check_runs(runs: Path, sessions: int) -> dict:
    records = []
    for path in runs.rglob("run.json"):
        if "_references" in path.parts:
            continue
        record = json.loads(path.read_text())
        model = path.parent / "model.safetensors"
        records.append({"classes": record["spec"]["classes"], "owner": record.get("owner"), "status": record["status"],
                        "UA": record["metrics"]["UA"] if record.get("metrics") else None,
                        "original_UA": (record.get("original_metrics") or {}).get("UA"),
                        "saved": model.stat().st_mtime if model.exists() else None,
                        "seconds": record.get("seconds"),       # the unlearning itself, which ended at "saved"
                        "insights": record.get("insights")})
    records.sort(key=lambda r: r["saved"] or 0)
    # the record's "created" is rewritten when the run is saved, so each run's device interval is
    # [saved - seconds, saved]: queued runs never overlap
    overlaps = [i for i in range(1, len(records)) if records[i - 1]["saved"] and records[i]["saved"]
                and records[i]["saved"] - records[i]["seconds"] < records[i - 1]["saved"] - 0.05]
    return {"records": records,
            "one_per_class": sorted(c for r in records for c in r["classes"]) == list(range(sessions)),
            "distinct_owners": len({r["owner"] for r in records}) == sessions,
            "all_finished": all(r["status"] == "finished" for r in records) and len(records) == sessions,
            "all_forgot": all(r["UA"] is not None and r["UA"] > (r["original_UA"] or 0) for r in records),
            "never_overlapped": not overlaps}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--out", type=Path, default=REPO / "artifacts" / "load")
    parser.add_argument("--wait", type=float, default=2400, help="seconds a session waits for its results")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = Path(tempfile.mkdtemp(prefix="load-runs-"))
    process, url = start_server(runs, args.out / "server.log")
    sampler = RssSampler(process.pid)
    sampler.start()
    began = time.time()
    try:
        rows = asyncio.run(drive(url, args.sessions, args.out, args.wait))
        time.sleep(2)
    finally:
        sampler.stop.set()
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
    disk = check_runs(runs, args.sessions)
    peak = max((mb for _, mb in sampler.samples), default=0.0)
    summary = {"sessions": args.sessions, "url": url, "total_s": round(time.time() - began, 1),
               "peak_rss_mb": round(peak, 1), "idle_rss_mb_first_sample": round(sampler.samples[0][1], 1),
               "rss_after_runs_mb": round(sampler.samples[-1][1], 1), "cpu_count": os.cpu_count(),
               "load_average": os.getloadavg(), "per_session": rows, **{k: v for k, v in disk.items()}}
    checks = {"isolated": all(r.get("own_class_shown") and not r.get("other_class_shown") for r in rows),
              "queued": disk["never_overlapped"] and any(r.get("saw_queue") for r in rows),
              **{k: disk[k] for k in ("one_per_class", "distinct_owners", "all_finished", "all_forgot")}}
    summary["checks"] = checks
    (args.out / "load.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps(summary, indent=2, default=str))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
