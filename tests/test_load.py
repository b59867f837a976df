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

    jobs = {}
    for owner, forgotten in (("alice", 3), ("bob", 7)):
        spec = engine.ForgetSpec(classes=(forgotten,))
        jobs[owner] = lab.submit(owner, "unlearn", f"{owner}", pipeline.run_request("ft", pipeline.default_config("ft"), spec),
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
        assert run["spec_text"] == f"class {engine.load_dataset('fashion-mini').classes[forgotten]}"
        # the figures are this run's own: UA recomputed from its saved model on its own forget set
        dataset = engine.load_dataset("fashion-mini")
        model, _ = engine.runs.load_run(run["path"])
        forget = engine.make_split(dataset, engine.ForgetSpec.from_dict(run["spec"])).forget
        predictions = engine.predict(model, dataset.train_images[forget], device=engine.resolve_device("cpu")).predictions
        accuracy = 100.0 * float(np.mean(predictions == dataset.train_labels.numpy()[forget]))
        assert run["metrics"]["UA"] == pytest.approx(100.0 - accuracy, abs=0.01)
