"""Fairness of the shared job queue: round-robin over sessions, a per-session limit on waiting runs, queued runs
recorded when queued (so a dead process's waiting run lists "interrupted (not started)"), and a normal shutdown
recorded as "interrupted" — a user's Cancel stays "cancelled"."""
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import engine
from app.jobs import JobManager, QueueFull

REPO = Path(__file__).resolve().parent.parent


def gated(gate, log):
    def work(job, report, should_stop):
        log.append(job.title)
        while not gate.is_set():
            if should_stop():
                raise engine.RunCancelled(str(should_stop()))
            time.sleep(0.01)
        return {}
    return work


def running(manager, job, timeout=5.0):
    deadline = time.time() + timeout
    while manager.snapshot(job.id)["status"] != "running" and time.time() < deadline:
        time.sleep(0.01)
    return manager.snapshot(job.id)["status"] == "running"


@pytest.fixture
def manager():
    m = JobManager("test")
    yield m
    m.shutdown()


def test_the_next_job_comes_from_the_session_served_least_recently(manager):
    gate, log = threading.Event(), []
    heavy = [manager.submit("heavy", "unlearn", "heavy 0", {}, gated(gate, log))]
    assert running(manager, heavy[0])
    heavy += [manager.submit("heavy", "unlearn", f"heavy {n}", {}, gated(gate, log)) for n in range(1, 4)]
    light = manager.submit("light", "unlearn", "light 0", {}, gated(gate, log))
    other = manager.submit("other", "unlearn", "other 0", {}, gated(gate, log))
    # FIFO would put both behind the three waiting "heavy" runs; round-robin lets each in after one turn
    assert [manager.position(j.id) for j in (light, other)] == [1, 2]
    assert [manager.position(j.id) for j in heavy] == [0, 3, 4, 5]
    gate.set()
    for job in [*heavy, light, other]:
        assert manager.wait(job.id, 10)["status"] == "finished"
    assert log == ["heavy 0", "light 0", "other 0", "heavy 1", "heavy 2", "heavy 3"]


def test_a_session_holds_at_most_max_waiting_runs_and_a_further_submit_queues_nothing(manager):
    gate, log = threading.Event(), []
    first = manager.submit("s1", "unlearn", "run", {}, gated(gate, log))
    assert running(manager, first)
    for _ in range(JobManager.MAX_WAITING):
        manager.submit("s1", "unlearn", "run", {}, gated(gate, log))
    before = len(manager.jobs())
    with pytest.raises(QueueFull, match=f"at most {JobManager.MAX_WAITING} per session"):
        manager.submit("s1", "unlearn", "run", {}, gated(gate, log))
    assert len(manager.jobs()) == before and manager.busy()["waiting"] == JobManager.MAX_WAITING
    manager.submit("s2", "unlearn", "run", {}, gated(gate, log))            # another session is not held back
    manager.submit("s1", "reference", "Retrain", {}, gated(gate, log))     # the app's own Retrain is not refused
    gate.set()


def test_shutdown_interrupts_and_cancel_cancels(manager):
    gate, log, ended = threading.Event(), [], []
    first = manager.submit("s1", "unlearn", "running", {}, gated(gate, log))
    assert running(manager, first)
    waiting = manager.submit("s2", "unlearn", "waiting", {}, gated(gate, log), not_started=ended.append)
    dropped = manager.submit("s3", "unlearn", "dropped", {}, gated(gate, log), not_started=ended.append)
    assert manager.cancel(dropped.id)
    assert manager.snapshot(dropped.id)["status"] == "cancelled" and ended == ["cancelled"]
    manager.shutdown()
    assert manager.snapshot(first.id)["status"] == "interrupted"         # was "cancelled", like a user's cancel
    assert manager.snapshot(waiting.id)["status"] == "interrupted" and ended == ["cancelled", "interrupted"]
    assert log == ["running"]                                              # the waiting one never started
    with pytest.raises(QueueFull):
        manager.submit("s1", "unlearn", "late", {}, gated(gate, log))


def test_a_run_stopped_by_shutdown_is_recorded_interrupted_not_cancelled(tmp_path):
    spec = engine.ForgetSpec(classes=(1,))
    request = engine.RunRequest(method="ft", config=engine.make_config("ft", forget_kind="class"),
                                forget=spec, seed=0, dataset="fashion-mini", device="cpu")
    workspace = engine.Workspace(runs=tmp_path, fast=True)
    for stop, status in ((lambda: engine.SHUTDOWN, "interrupted"), (lambda: True, "cancelled")):
        run_dir = engine.new_run_dir(tmp_path, "ft", 0, "fashion-mini")
        with pytest.raises(engine.RunCancelled):
            engine.unlearn_run(request, workspace, run_dir, should_stop=stop)
        record = engine.read_record(run_dir)
        assert record.status == status and record.error is None and record.pid is None


CHILD = r"""
import os, sys, time
import engine
from app import pipeline
from app.jobs import manager
spec = engine.ForgetSpec(classes=(1,))
request = pipeline.run_request("ga", pipeline.default_config("ga", "class"), spec, device="cpu")
first = pipeline.submit_run("s1", request)           # runs for real
second = pipeline.submit_run("s2", request)          # still waiting when the process ends
deadline = time.time() + 300
while not manager().snapshot(first.id)["stage"].startswith("gradient ascent") and time.time() < deadline:
    time.sleep(0.05)                                 # inside the unlearning loop
if sys.argv[1] == "kill":
    os._exit(0)                      # the process dies with one run going and one waiting (kill -9, a crash)
sys.exit(0)                          # a normal exit (what Streamlit does on SIGTERM): atexit shuts the manager down
"""


@pytest.mark.parametrize("how", ["kill", "exit"])
def test_runs_of_a_process_that_ends_are_interrupted_and_a_waiting_one_not_started(tmp_path, how):
    env = {**os.environ, "UNLEARNING_LAB_RUNS": str(tmp_path), "UNLEARNING_LAB_FAST": "1",
           "UNLEARNING_LAB_WORKER_NICE": "0", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", CHILD, how], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    runs = {run["owner"]: run for run in engine.list_runs(tmp_path)}     # settled by the one liveness rule
    assert set(runs) == {"s1", "s2"}                 # the waiting run was recorded when it was queued
    assert runs["s1"]["status_text"] == "interrupted" and runs["s1"]["error"] is None
    assert runs["s2"]["status_text"] == "interrupted (not started)" and runs["s2"]["error"] == engine.NOT_STARTED
    stored = {owner: engine.read_record(Path(run["path"])) for owner, run in runs.items()}
    if how == "exit":                                # written so at shutdown, not only inferred afterwards
        assert [stored[o].status for o in ("s1", "s2")] == ["interrupted", "interrupted"]
        assert stored["s1"].pid is None and stored["s2"].pid is None
    else:
        assert [stored[o].status for o in ("s1", "s2")] == ["running", "queued"]
