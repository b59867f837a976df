"""The app's jobs in a worker process of their own (UNLEARNING_LAB_WORKER=process): a fast run completes there
with the same record as in the server's thread, the panel and record say where it ran, Ray stays unimported,
and Cancel stops a run there."""
from __future__ import annotations

import time
from pathlib import Path

import engine
from lab_env import ORIGINAL, fast_lab, sha256, start_run_to_cancel
from test_app_ray import app_process

SAME = ("metrics", "reference_metrics", "avg_gap", "config", "seed", "identity", "forget")


def test_a_run_in_the_worker_process_equals_the_thread_run(tmp_path):
    thread = app_process(tmp_path / "thread", [1], None)
    process = app_process(tmp_path / "process", [1], None, UNLEARNING_LAB_WORKER="process")
    for out in (thread, process):
        (job,) = out["jobs"]
        assert job["status"] == "finished", job["error"]
        assert out["ray"] is False and out["run"]["insights"] == "ready"
    assert process["run"]["device"].startswith("worker process · CPU (")
    running = [s for s in process["snapshots"] if s["status"] == "running" and s["stage"]]
    assert running and all(s["where"].startswith("worker process · CPU (") for s in running)
    assert len({(s["stage"], s["step"]) for s in running}) >= 5               # live progress, not only the end
    a, b = (engine.read_record(out["run"]["path"]) for out in (thread, process))
    assert a.device == process["run"]["device"].removeprefix("worker process · ")  # same threads, same numbers
    for field in SAME:
        timeless = [{k: v for k, v in x.items() if k != "eval_seconds"} if isinstance(x, dict) else x
                    for x in (getattr(a, field), getattr(b, field))]
        assert timeless[0] == timeless[1], field


def test_cancel_stops_a_run_in_the_worker_process(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNING_LAB_WORKER", "process")
    with fast_lab(tmp_path) as settings:
        from app import pipeline, store
        from app.jobs import JobManager

        assert settings.WORKER == "process"
        before = sha256(ORIGINAL)
        manager = JobManager("process-cancel")
        job, snap = start_run_to_cancel(manager)
        assert snap["status"] == "running" and snap["metrics"]["where"].startswith("worker process"), (snap["status"], snap.get("error"), snap["stage"])
        worker = pipeline.worker_process()
        pid = worker.pid
        pressed = time.time()
        manager.cancel(job.id)
        snap = manager.wait(job.id, 60)
        assert snap["status"] == "cancelled" and snap["error"] is None
        assert time.time() - pressed < 15
        run = next(r for r in store.list_runs() if r.get("job") == job.id)
        assert run["status"] == "cancelled" and run["device"].startswith("worker process")
        assert not (Path(run["path"]) / "model.safetensors").exists()
        assert worker.pid == pid                     # the run honoured Cancel; the worker is kept for the next job
        manager.shutdown()
        worker.close()
        pipeline._CLUSTER.pop("process", None)
    assert sha256(ORIGINAL) == before
