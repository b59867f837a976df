"""The app's jobs on a Ray cluster ($UNLEARNING_LAB_RAY_ADDRESS): a real local Ray (2 CPUs on 127.0.0.1, started
once for this module, as in test_executor.py), the real job manager and pipeline, fast settings.

- an app process connecting by address completes a fast run there — progress snapshots arrive, the panel's
  snapshot and the record's device say "Ray cluster · …", the background Retrain runs there too;
- Cancel of a run on the cluster stops it (cancelled, no model saved, the CPUs freed);
- unset, a fast run runs in the app's process and Ray is never imported.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import engine
from engine.training import native_cpu_bf16
from lab_env import ORIGINAL, fast_lab, sha256, start_run_to_cancel

REPO = Path(__file__).resolve().parent.parent

# The app's side of one Start, as a server process does it: JobManager + pipeline, polled like the job panel.
APP_PROCESS = r"""
import json, sys, time
import engine
from app import pipeline, store
from app.jobs import TERMINAL, manager

manager = manager()      # the process-wide manager, as the server's: the background Retrain is queued there too
spec = engine.ForgetSpec(classes=tuple(json.loads(sys.argv[1])))
job = manager.submit("me", "unlearn", "run", pipeline.run_request("ft", pipeline.default_config("ft"), spec),
                     pipeline.unlearn_and_reference_work)
snapshots, deadline = [], time.time() + 900
while time.time() < deadline:
    jobs = manager.jobs()
    snapshots += [{k: j[k] for k in ("id", "kind", "status", "stage", "step", "total", "position")} |
                  {"where": j["metrics"].get("where")} for j in jobs]
    if jobs and all(j["status"] in TERMINAL for j in jobs):   # a Retrain, when one is needed, is queued by the
        break                                                  # run before the run's job ends
    time.sleep(0.1)
run = next((r for r in store.list_runs() if r.get("job") == job.id), None)
print(json.dumps({"jobs": manager.jobs(), "snapshots": snapshots, "run": run, "ray": "ray" in sys.modules},
                 default=str))
"""


def app_process(runs: Path, classes, ray_address: str | None, **extra_env: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UNLEARNING_LAB_", "RAY_"))}
    env.update(UNLEARNING_LAB_FAST="1", UNLEARNING_LAB_RUNS=str(runs), UNLEARNING_LAB_NO_WARMUP="1",
               PYTHONPATH=str(REPO), OMP_WAIT_POLICY="PASSIVE", UNLEARNING_LAB_WORKER_NICE="0")
    env.setdefault("NUMBA_CACHE_DIR", str(REPO / ".numba_cache"))
    if ray_address:
        # an explicit address turns on Ray's token authentication only when asked (the token: ~/.ray/auth_token)
        env.update(UNLEARNING_LAB_RAY_ADDRESS=ray_address, RAY_AUTH_MODE="token")
    env.update(extra_env)
    done = subprocess.run([sys.executable, "-c", APP_PROCESS, json.dumps(list(classes))], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cluster():
    """A local Ray (2 CPUs, 127.0.0.1) and its address, as `ray start --head` would give it."""
    from engine.ray_executor import RayExecutor

    executor = RayExecutor(num_cpus=2)
    ray = executor.start()
    yield ray, ray.get_runtime_context().gcs_address
    executor.close()


# ------------------------------------------------------------------------------------------ unset: no Ray
def test_unset_runs_in_the_app_process_without_importing_ray(tmp_path):
    out = app_process(tmp_path, [1], None)
    (job,) = out["jobs"]
    assert job["status"] == "finished", job["error"]
    assert out["ray"] is False
    assert out["run"]["device"].startswith("CPU (") and "Ray" not in out["run"]["device"]
    assert not any(s["where"] for s in out["snapshots"])


def test_bad_ray_settings_are_refused_clearly(monkeypatch):
    import importlib

    from app import settings

    try:
        for name, value, message in (("UNLEARNING_LAB_RAY_CPUS", "two", "must be a number"),
                                     ("UNLEARNING_LAB_RAY_GPUS", "-0.5", "must be at least 0")):
            monkeypatch.setenv(name, value)
            with pytest.raises(ValueError, match=f"{name} {message}"):
                importlib.reload(settings)
            monkeypatch.delenv(name)
    finally:
        importlib.reload(settings)
    assert settings.RAY_CPUS == 1 and settings.RAY_GPUS == 0


def test_the_panel_names_where_a_job_runs():
    from streamlit.testing.v1 import AppTest

    def panel():
        from app import ui

        ui.render_job({"id": "1", "owner": "nobody", "kind": "unlearn", "title": "FT · class Trouser",
                       "status": "running", "stage": "fine-tune", "step": 3, "total": 10, "eta": 4.0,
                       "elapsed": 2.0, "position": 0, "metrics": {"loss": 0.5, "where": "Ray cluster · NVIDIA H200"},
                       "history": [], "error": None, "cancel_requested": False}, "k")

    at = AppTest.from_function(panel).run(timeout=60)
    assert any("on Ray cluster · NVIDIA H200" in m.value for m in at.markdown), [m.value for m in at.markdown]


# --------------------------------------------------------------------------------------------- on Ray
def test_an_app_pointed_at_the_cluster_runs_there(cluster, tmp_path):
    """Classes 1 and 2 have no shipped Retrain: the run, its insights and the background Retrain all go to Ray."""
    _, address = cluster
    out = app_process(tmp_path, [1, 2], address)
    assert len(out["jobs"]) == 2 and out["jobs"][0]["status"] == "finished", out["jobs"][0]["error"]
    run_job, reference_job = sorted(out["jobs"], key=lambda j: j["kind"] != "unlearn")
    assert reference_job["kind"] == "reference" and reference_job["status"] == "finished", reference_job["error"]
    mine = [s for s in out["snapshots"] if s["id"] == run_job["id"] and s["status"] == "running"]
    assert len({(s["stage"], s["step"]) for s in mine}) >= 5            # live progress, not only the end
    assert any(s["stage"].startswith("insights") for s in mine)        # the insights ran there too
    on_ray = f"Ray cluster · CPU (1 threads{', bf16' if native_cpu_bf16() else ''})"   # the worker's own CPU
    assert all(s["where"] == on_ray for s in mine if s["stage"])
    waiting = [s for s in out["snapshots"] if s["id"] == reference_job["id"] and s["status"] == "queued"]
    assert waiting and all(s["position"] == 1 for s in waiting)         # the queue is the app's, as before
    assert any(s["where"] for s in out["snapshots"] if s["id"] == reference_job["id"] and s["status"] == "running")
    run = out["run"]
    assert run["device"] == on_ray and run["status"] == "finished"
    assert run["insights"] == "ready" and (Path(run["path"]) / "model.safetensors").is_file()
    record = engine.read_record(run["path"])            # the Retrain back-filled the gap after the run
    assert record.reference_metrics is not None and record.avg_gap is not None
    assert out["ray"] is True


def test_cancel_stops_a_run_on_the_cluster(cluster, tmp_path, monkeypatch):
    ray, address = cluster
    monkeypatch.setenv("UNLEARNING_LAB_RAY_ADDRESS", address)
    with fast_lab(tmp_path) as settings:
        from app import store
        from app.jobs import JobManager

        before = sha256(ORIGINAL)
        manager = JobManager("ray-cancel")
        job, snap = start_run_to_cancel(manager)
        assert snap["status"] == "running" and snap["metrics"]["where"].startswith("Ray cluster"), snap
        pressed = time.time()
        manager.cancel(job.id)
        snap = manager.wait(job.id, 60)
        assert snap["status"] == "cancelled" and snap["error"] is None
        assert time.time() - pressed < 15
        run = next(r for r in store.list_runs() if r.get("job") == job.id)
        assert run["status"] == "cancelled" and run["device"].startswith("Ray cluster")
        assert not (Path(run["path"]) / "model.safetensors").exists()
        assert settings.RAY_ADDRESS == address
        manager.shutdown()
    free = time.time() + 30
    while ray.available_resources().get("CPU", 0) < 2 and time.time() < free:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) == 2
    assert sha256(ORIGINAL) == before
