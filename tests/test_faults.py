"""Faults: Cancel in the middle of every stage (saliency, stage 1, stage 2, Retrain, insights), an exception
inside a run, a diverging run, the server killed during a run. After each: the run is marked for what happened
(never "finished" when it did not finish), finished runs are still listed and loadable, the original model is
bit-for-bit intact, the job manager goes on serving, and the pages still render.

Fast settings (UNLEARNING_LAB_FAST=1) and a temporary run folder; ≈ 1–2 minutes on the 2-core CPU."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import engine
from lab_env import ORIGINAL, fast_lab, sha256

REPO = Path(__file__).resolve().parent.parent
CLASS_1 = engine.ForgetSpec(classes=(1,))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with fast_lab(tmp_path_factory.mktemp("runs")):
        from app.jobs import JobManager

        manager = JobManager("faults")
        before = sha256(ORIGINAL)
        yield manager
        manager.shutdown()
        assert sha256(ORIGINAL) == before == engine.read_sidecar(ORIGINAL)["sha256"]     # the original is intact


def cancelling_at(manager, prefix: str, work):
    """`work`, with Cancel pressed (through the manager, as the page does) at the first report of a stage
    starting with ``prefix`` once one step of it is done: the middle of that stage."""
    seen = []

    def wrapped(job, report, should_stop):
        def spy(stage, step=0, total=0, **metrics):
            seen.append(stage)
            report(stage, step, total, **metrics)
            if stage.startswith(prefix) and step >= 1:
                manager.cancel(job.id)
        return work(job, spy, should_stop)
    return wrapped, seen


def records():
    from app import store
    return store.list_runs()


def record_of(job):
    """The run record a job wrote (records are listed newest first, but two can share a second)."""
    return next(r for r in records() if r.get("job") == job.id)


@pytest.mark.parametrize("stage", ["saliency", "stage 1", "stage 2"])
def test_cancel_in_the_middle_of_an_unlearning_stage(lab, stage):
    from app import pipeline

    count = len(records())
    work, seen = cancelling_at(lab, stage, pipeline.unlearn_work)
    job = lab.submit("s1", "unlearn", f"cancel at {stage}",
                     pipeline.run_request("wsscl", pipeline.default_config("wsscl"), CLASS_1), work)
    snap = lab.wait(job.id, 300)
    assert snap["status"] == "cancelled" and snap["error"] is None
    assert any(s.startswith(stage) for s in seen) and seen[-1].startswith(stage)    # stopped inside that stage
    assert len(records()) == count + 1
    run = record_of(job)
    assert run["status"] == "cancelled" and run["method"] == "wsscl"
    assert not (Path(run["path"]) / "model.safetensors").exists()                  # nothing half-saved


def test_cancel_in_the_middle_of_insights_keeps_the_finished_metrics(lab):
    from app import pipeline

    work, seen = cancelling_at(lab, "insights · features", pipeline.unlearn_work)
    job = lab.submit("s1", "unlearn", "cancel in insights",
                     pipeline.run_request("wsscl", pipeline.default_config("wsscl"), CLASS_1), work)
    lab.wait(job.id, 300)
    run = record_of(job)
    assert seen[-1] == "insights · features"
    assert run["status"] == "finished" and run["insights"] == "cancelled"           # metrics stand; pictures don't
    model, record = engine.runs.load_run(run["path"])
    assert all(0 <= record["metrics"][k] <= 100 for k in engine.GAP_KEYS)             # the metrics were saved whole
    assert set(model.state_dict()) == set(engine.load_original(engine.load_dataset("fashion-mini"))[0].state_dict())
    assert pipeline.load_insights(run) is None


def test_cancel_in_the_middle_of_the_background_retrain(lab):
    from app import pipeline, store

    spec = engine.ForgetSpec(classes=(4,))
    work, seen = cancelling_at(lab, "retrain", pipeline.reference_work)
    job = lab.submit("s1", "reference", "retrain", engine.ReferenceRequest(forget=spec), work)
    snap = lab.wait(job.id, 300)
    assert snap["status"] == "cancelled" and seen[-1] == "retrain"
    path = engine.computed_reference_path(store.reference_dir(), "fashion-mini", spec, fast=True)
    assert not path.exists() and not path.with_suffix(".json").exists()               # no half reference


def test_an_exception_inside_a_run_fails_it_clearly_and_the_next_run_works(lab, monkeypatch):
    from app import pipeline

    finished = [r["path"] for r in records() if r["status"] == "finished"]

    def broken(method, model, *args, on_progress=None, **kwargs):
        on_progress(engine.Progress("stage 1 · forget (KL)", 1, 4, {"loss": 1.0}))
        raise RuntimeError("boom in the middle of stage 1")

    import engine.workflow

    monkeypatch.setattr(engine.workflow, "run_unlearning", broken)
    job = lab.submit("s1", "unlearn", "broken", pipeline.run_request("wsscl", pipeline.default_config("wsscl"), CLASS_1),
                     pipeline.unlearn_work)
    snap = lab.wait(job.id, 120)
    assert snap["status"] == "failed" and snap["error"] == "RuntimeError: boom in the middle of stage 1"
    run = record_of(job)
    assert run["status"] == "failed" and "boom" in run["error"]
    assert not (Path(run["path"]) / "model.safetensors").exists()
    monkeypatch.undo()
    after = lab.submit("s2", "unlearn", "next", {}, lambda job, report, stop: {"ok": True})
    assert lab.wait(after.id, 30)["result"] == {"ok": True}                          # the worker goes on
    assert all(engine.runs.load_run(p)[1]["status"] == "finished" for p in finished)  # nothing saved was lost


def test_a_diverging_run_stops_itself_and_says_so(lab):
    """Gradient ascent at its largest learning rate on small batches drives the loss to -inf: the training
    loop's finiteness check stops the run (RunDiverged) instead of saving garbage, and the record says why."""
    from app import pipeline

    job = lab.submit("s1", "unlearn", "diverge",
                     pipeline.run_request("ga", {"lr": 0.1, "epochs": 50, "batch_size": 8}, CLASS_1),
                     pipeline.unlearn_work)
    snap = lab.wait(job.id, 300)
    assert snap["status"] == "failed" and snap["error"].startswith("RunDiverged"), snap["error"]
    assert "the loss became" in snap["error"] and "smaller learning rate" in snap["error"]
    run = record_of(job)
    assert run["status"] == "failed" and "RunDiverged" in run["error"]
    assert not (Path(run["path"]) / "model.safetensors").exists()


KILLED_SERVER = r"""
import os, sys, time
import engine
from app import pipeline, store
from app.jobs import manager
job = pipeline.submit_run("victim", pipeline.run_request("retrain", {"epochs": 3}, engine.ForgetSpec(classes=(2,))))
while manager().snapshot(job.id)["stage"] != "retrain":
    time.sleep(0.05)
print("RUNNING", flush=True)
time.sleep(600)
"""


def test_server_killed_during_a_run_leaves_it_interrupted_and_the_rest_usable(lab):
    from app import store

    finished_before = {r["path"] for r in records() if r["status"] == "finished"}
    assert finished_before                                     # from the insights test above
    server = subprocess.Popen([sys.executable, "-c", KILLED_SERVER], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert server.stdout.readline().strip() == "RUNNING"
        running = next(r for r in records() if r.get("owner") == "victim")
        assert running["status"] == "running" and running["pid"] == server.pid   # alive: shown as running
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(30)
    listed = {r["path"]: r for r in records()}
    assert listed[running["path"]]["status"] == "interrupted"                     # never "finished"
    assert not (Path(running["path"]) / "model.safetensors").exists()
    assert all(listed[p]["status"] == "finished" for p in finished_before)
    assert store.read_record(Path(running["path"]))["status"] == "interrupted"


def test_a_restart_that_reuses_the_pid_still_marks_the_run_interrupted(lab):
    """In a container the restarted server often gets the same pid (e.g. 1): a per-process token tells them apart."""
    from app import store

    run = store.new_run_dir("wsscl", 0, "fashion-mini")
    store.write_record(run, {"status": "running", "pid": os.getpid(), "process": "a-previous-process",
                             "created": "2026-01-01T00:00:00", "method": "wsscl", "insights": "none"})
    assert store.read_record(run)["status"] == "interrupted"
    store.write_record(run, {"status": "finished", "pid": os.getpid(), "process": "a-previous-process",
                             "created": "2026-01-01T00:00:00", "method": "wsscl", "insights": "computing"})
    assert store.read_record(run)["insights"] == "interrupted" and store.read_record(run)["status"] == "finished"
    store.write_record(run, {"status": "running", "pid": os.getpid(), "process": store.PROCESS_TOKEN,
                             "created": "2026-01-01T00:00:00", "method": "wsscl"})
    assert store.read_record(run)["status"] == "running"                           # this process's own run


def test_pages_still_render_after_every_fault(lab):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app/streamlit_app.py"), default_timeout=180)
    at.run()
    for page in ("compare", "results", "run"):
        at.switch_page(f"views/{page}.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
    at.switch_page("views/compare.py")
    at.run()
    at.segmented_control(key="compare-scope").set_value("all").run()
    assert not at.exception
    statuses = set(at.dataframe[0].value["status"])
    assert {"finished", "cancelled", "failed", "interrupted"} <= statuses
