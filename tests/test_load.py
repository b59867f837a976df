"""Two sessions at once, at the job-manager level (the browser version with ≥ 4 sessions is
`python -m scripts.load_test`, too heavy for the default suite): their runs queue on the one device and each
session sees only its own jobs and results."""
import importlib
import os
from pathlib import Path

import numpy as np
import pytest

import engine

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNING_LAB_FAST", "1")
    monkeypatch.setenv("UNLEARNING_LAB_RUNS", str(tmp_path))
    from app import pipeline, settings
    importlib.reload(settings)
    # insights are covered by tests/test_faults.py and test_app_pages.py; here they would only add minutes
    monkeypatch.setattr(pipeline, "compute_insights", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("skipped")))
    from app.jobs import JobManager

    manager = JobManager("two-sessions")
    yield manager
    manager.shutdown()
    monkeypatch.delenv("UNLEARNING_LAB_FAST")
    importlib.reload(settings)


def test_two_sessions_queue_and_stay_isolated(lab):
    from app import pipeline, store

    jobs = {}     # fine-tuning at lr 1.0 on 5 % of the retain set: forgets a class in seconds (measured: UA 100)
    for owner, forgotten in (("alice", 3), ("bob", 7)):
        spec = {"classes": [forgotten], "fraction": None, "sample_ids": [], "seed": 0}
        jobs[owner] = lab.submit(owner, "unlearn", f"{owner}", {"method": "ft", "spec": spec, "seed": 0,
                                                                "config": {"lr": 1.0, "epochs": 1, "retain_fraction": 0.05}},
                                 pipeline.unlearn_work)
    assert lab.snapshot(jobs["bob"].id)["status"] == "queued"                 # one device: bob waits
    done = {owner: lab.wait(job.id, 300) for owner, job in jobs.items()}
    assert all(s["status"] == "finished" for s in done.values()), [s["error"] for s in done.values()]
    a, b = lab._jobs[jobs["alice"].id], lab._jobs[jobs["bob"].id]
    assert b.started >= a.ended                                              # never two at once
    assert [j["id"] for j in lab.jobs("alice")] == [jobs["alice"].id]      # each session lists only its own
    assert [j["id"] for j in lab.jobs("bob")] == [jobs["bob"].id]
    for owner, forgotten in (("alice", 3), ("bob", 7)):
        run = store.load_run(done[owner]["result"]["run_id"])
        assert run["owner"] == owner and run["spec"]["classes"] == [forgotten]
        per_class = np.asarray(run["metrics"]["per_class_test_acc"])
        other = 7 if forgotten == 3 else 3
        assert per_class[forgotten] < per_class[other] - 30                  # its own class forgotten, not the other's
