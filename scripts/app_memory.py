"""Peak memory of the app's server-side process for one fast run, with its jobs in the process (the default)
and on a Ray cluster ($UNLEARNING_LAB_RAY_ADDRESS; here a local Ray with 2 CPUs started in its own process):

    python -m scripts.app_memory [--classes 1] [--out docs/app-memory.json]

The "app process" imports streamlit and the app, loads what the pages share (the dataset and the original
model, as app/resources.py does), then runs one Start — the method's fast defaults (UNLEARNING_LAB_FAST=1),
FT on the given classes, metrics then insights — through `app.jobs.JobManager` and `app.pipeline`, exactly the
server's worker path, without a browser. Figures: the process's peak RSS (VmHWM) and its RSS before the run;
with Ray, also the peak RSS of the cluster's processes (raylet, GCS, workers: sampled every 0.25 s).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from scripts.load_server import process_tree

REPO = Path(__file__).resolve().parent.parent

APP = r"""
import json, sys, time
t0 = time.perf_counter()
import streamlit, engine
from app import pipeline, settings, store, ui
from app.jobs import JobManager
dataset = engine.load_dataset(settings.DATASET)
original = engine.load_original(dataset)[0]
def status(key):
    return int(next(l for l in open("/proc/self/status") if l.startswith(key)).split()[1]) / 1024
before = status("VmRSS:")
manager = JobManager("memory")
spec = engine.ForgetSpec(classes=tuple(json.loads(sys.argv[1])))
start = time.perf_counter()
job = manager.submit("me", "unlearn", "run", pipeline.run_request("ft", pipeline.default_config("ft"), spec),
                     pipeline.unlearn_and_reference_work)
snap = manager.wait(job.id, 1800)
run = next(r for r in store.list_runs() if r.get("job") == job.id)
print(json.dumps({"status": snap["status"], "error": snap["error"], "device": run["device"],
                  "run_seconds": round(time.perf_counter() - start, 1), "rss_before_run_mb": round(before, 1),
                  "peak_rss_mb": round(status("VmHWM:"), 1), "ray_imported": "ray" in sys.modules}))
"""

CLUSTER = r"""
import sys
from engine.ray_executor import RayExecutor
ray = RayExecutor(num_cpus=2).start()
print("ADDRESS", ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()          # until the caller closes our stdin
"""


def environment(runs: Path, address: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UNLEARNING_LAB_", "RAY_"))}
    env.update(UNLEARNING_LAB_FAST="1", UNLEARNING_LAB_RUNS=str(runs), UNLEARNING_LAB_NO_WARMUP="1",
               PYTHONPATH=str(REPO), OMP_WAIT_POLICY="PASSIVE")
    env.setdefault("NUMBA_CACHE_DIR", str(REPO / ".numba_cache"))
    if address:
        # an explicit address turns on Ray's token authentication only when asked (the token: ~/.ray/auth_token)
        env.update(UNLEARNING_LAB_RAY_ADDRESS=address, RAY_AUTH_MODE="token")
    return env


def run_app(runs: Path, classes: list[int], address: str | None) -> dict:
    done = subprocess.run([sys.executable, "-c", APP, json.dumps(classes)], cwd=REPO, env=environment(runs, address),
                          capture_output=True, text=True, timeout=2400)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_tree_rss(pid: int, stop: threading.Event, out: dict) -> None:
    while not stop.is_set():
        out["peak"] = max(out.get("peak", 0.0), sum(rss for _, rss in process_tree(pid).values()))
        time.sleep(0.25)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[1])
    parser.add_argument("--runs", type=Path, default=REPO / "runs/_memory")
    parser.add_argument("--out", type=Path, default=REPO / "docs/app-memory.json")
    args = parser.parse_args(argv)
    figures = {"machine": "2-core CPU VM (AMD EPYC), shared with other jobs", "load_before": os.getloadavg(),
               "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "classes": args.classes}
    figures["local"] = run_app(args.runs / "local", args.classes, None)
    cluster = subprocess.Popen([sys.executable, "-c", CLUSTER], cwd=REPO, env=environment(args.runs, None),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        address = ""
        while not address:
            line = cluster.stdout.readline()
            if not line:
                raise SystemExit("the local Ray did not start")
            address = line.split()[1] if line.startswith("ADDRESS ") else ""
        stop, tree = threading.Event(), {}
        sampler = threading.Thread(target=peak_tree_rss, args=(cluster.pid, stop, tree), daemon=True)
        sampler.start()
        figures["cluster_idle_rss_mb"] = round(sum(rss for _, rss in process_tree(cluster.pid).values()), 1)
        figures["ray"] = run_app(args.runs / "ray", args.classes, address)
        stop.set()
        sampler.join()
        figures["cluster_peak_rss_mb"] = round(tree["peak"], 1)
    finally:
        started = list(process_tree(cluster.pid))
        cluster.stdin.close()          # the cluster's driver shuts its local Ray down on exit
        cluster.wait(60)
        time.sleep(2)
        for pid in started:            # only processes this script started: stragglers of that Ray
            if process_tree(pid):
                os.kill(pid, 15)
    figures["load_after"] = os.getloadavg()
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
