"""The background run manager: order, queue positions, progress snapshots, cancel, failure, isolation."""
import threading
import time

import pytest

from app.jobs import TERMINAL, JobManager


def slow_work(steps=50, pause=0.01, fail_at=None):
    def work(job, report, should_stop):
        for step in range(steps):
            if should_stop():
                raise type("RunCancelled", (Exception,), {})("cancelled")
            if fail_at is not None and step == fail_at:
                raise ValueError("boom")
            report("stage A" if step < steps // 2 else "stage B", step + 1, steps, loss=1.0 / (step + 1), epoch=1)
            time.sleep(pause)
        return {"done": job.params["n"]}
    return work


@pytest.fixture
def manager():
    m = JobManager("test")
    yield m
    m.shutdown()


def test_jobs_run_one_at_a_time_in_order_with_positions(manager):
    gate = threading.Event()

    def blocked(job, report, should_stop):
        report("waiting", 0, 1)
        gate.wait(5)
        return {"n": job.params["n"]}

    jobs = [manager.submit("s1", "unlearn", f"job {n}", {"n": n}, blocked) for n in range(3)]
    deadline = time.time() + 5
    while manager.snapshot(jobs[0].id)["status"] != "running" and time.time() < deadline:
        time.sleep(0.01)
    assert [manager.position(j.id) for j in jobs] == [0, 1, 2]
    assert manager.snapshot(jobs[2].id)["status"] == "queued"
    gate.set()
    results = [manager.wait(j.id, 10) for j in jobs]
    assert [r["status"] for r in results] == ["finished"] * 3
    assert [r["result"]["n"] for r in results] == [0, 1, 2]
    starts = [manager._jobs[j.id].started for j in jobs]
    ends = [manager._jobs[j.id].ended for j in jobs]
    assert starts[1] >= ends[0] and starts[2] >= ends[1]          # never two at once
    assert manager.position(jobs[0].id) is None


def test_progress_snapshot_is_a_copy_with_stage_history_and_eta(manager):
    job = manager.submit("s1", "unlearn", "t", {"n": 1}, slow_work(steps=40, pause=0.01))
    deadline = time.time() + 5
    snap = manager.snapshot(job.id)
    while (snap["step"] < 5 or snap["status"] != "running") and time.time() < deadline:
        time.sleep(0.01)
        snap = manager.snapshot(job.id)
    assert snap["status"] == "running" and snap["stage"] == "stage A" and snap["total"] == 40
    assert snap["eta"] is not None and snap["eta"] >= 0 and snap["elapsed"] > 0
    snap["metrics"]["loss"] = -1                                   # mutating a snapshot changes nothing
    assert manager.snapshot(job.id)["metrics"].get("loss") != -1
    done = manager.wait(job.id, 10)
    assert done["status"] == "finished" and done["stages"][0][0] == "stage A"
    assert done["history"] and done["history"][-1][2]["loss"] == pytest.approx(1 / 40)


def test_cancel_stops_a_running_job_within_a_second_and_drops_a_queued_one(manager):
    running = manager.submit("s1", "unlearn", "long", {"n": 1}, slow_work(steps=10_000, pause=0.01))
    queued = manager.submit("s2", "unlearn", "next", {"n": 2}, slow_work(steps=2))
    while manager.snapshot(running.id)["status"] != "running":
        time.sleep(0.01)
    assert manager.cancel(queued.id)
    assert manager.snapshot(queued.id)["status"] == "cancelled"
    start = time.time()
    assert manager.cancel(running.id)
    snap = manager.wait(running.id, 5)
    assert snap["status"] == "cancelled" and snap["error"] is None
    assert time.time() - start < 1.0
    assert not manager.cancel(running.id)                          # already ended


def test_a_failed_job_reports_its_error_and_the_next_one_still_runs(manager):
    bad = manager.submit("s1", "unlearn", "bad", {"n": 1}, slow_work(steps=5, fail_at=2))
    good = manager.submit("s1", "unlearn", "good", {"n": 2}, slow_work(steps=3))
    assert manager.wait(bad.id, 5)["status"] == "failed"
    assert "boom" in manager.snapshot(bad.id)["error"]
    assert manager.wait(good.id, 5)["status"] == "finished"


def test_jobs_are_listed_per_owner(manager):
    a = manager.submit("alice", "unlearn", "a", {"n": 1}, slow_work(steps=1))
    b = manager.submit("bob", "unlearn", "b", {"n": 2}, slow_work(steps=1))
    manager.wait(b.id, 5)
    assert [j["id"] for j in manager.jobs("alice")] == [a.id]
    assert {j["id"] for j in manager.jobs()} == {a.id, b.id}
    assert all(j["status"] in TERMINAL for j in manager.jobs())
