"""The worker-process executor (the app's UNLEARNING_LAB_WORKER=process): the same contract as Ray's run_remote —
progress streamed, Cancel through a stop flag, a job's error reported with its config — plus a dead worker
failing only its own job and being replaced, and records equal to in-process at the same thread count."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from engine.executor import InlineExecutor, Job, JobFailed
from engine.process_executor import ProcessExecutor
from engine.progress import RunCancelled
from tests.scale_env import make_tiny_assets


@pytest.fixture(scope="module")
def worker():
    executor = ProcessExecutor(grace_s=5)
    yield executor
    executor.close()


def test_streams_progress_and_returns_in_another_process(worker):
    seen = []
    assert worker.run_remote(Job("tests.scale_env:counting", {"steps": 10, "pause": 0.02}), seen.append) == 10
    assert seen and seen[-1].step == 10 and seen[-1].stage == "counting"
    assert worker.pid is not None and worker.pid != os.getpid()
    assert worker.run_remote(Job("tests.scale_env:square", {"x": 7}))["square"] == 49   # the same worker, kept


def test_cancel_stops_the_job_and_the_worker_stays(worker):
    seen = []
    pid = worker.pid
    start = time.perf_counter()
    with pytest.raises(RunCancelled):
        worker.run_remote(Job("tests.scale_env:counting", {"steps": 2000, "pause": 0.02}), seen.append,
                          should_stop=lambda: len(seen) >= 3)
    assert 3 <= len(seen) and seen[-1].step < 2000 and time.perf_counter() - start < 10
    assert worker.pid == pid                              # the job honoured the flag: no need to end the worker


def test_a_job_that_ignores_cancel_is_ended_after_the_grace(worker):
    start = time.perf_counter()
    with pytest.raises(RunCancelled):
        worker.run_remote(Job("tests.scale_env:sleep_for", {"seconds": 60}), should_stop=lambda: True)
    assert time.perf_counter() - start < 20
    assert worker.run_remote(Job("tests.scale_env:square", {"x": 3}))["square"] == 9    # a fresh worker


def test_error_is_reported_with_the_config_and_others_finish(worker):
    with pytest.raises(JobFailed, match="bad input 5"):
        worker.run_remote(Job("tests.scale_env:fail_on", {"x": 5, "bad": 5}))
    results = list(worker.run([Job("tests.scale_env:fail_on", {"x": x, "bad": 1}, key=str(x)) for x in range(3)]))
    assert [r.ok for r in results] == [True, False, True] and '"x": 1' in results[1].error


def test_a_dead_worker_fails_its_job_only(worker):
    worker.start()
    threading.Timer(0.5, lambda: os.kill(worker.pid, signal.SIGKILL)).start()
    with pytest.raises(JobFailed, match="worker process ended"):
        worker.run_remote(Job("tests.scale_env:sleep_for", {"seconds": 30}))
    assert worker.run_remote(Job("tests.scale_env:square", {"x": 4}))["square"] == 16


def test_population_equals_in_process(worker, tmp_path):
    """Real trainings: the same records and weights as in-process (both at the job's one thread)."""
    from engine.population import build_population, same_members

    npz, _ = make_tiny_assets(tmp_path / "assets")
    for name, executor in (("inline", InlineExecutor()), ("process", worker)):
        manifest = build_population(executor, dataset=str(npz), kind="shadow", count=2, out=tmp_path / name,
                                    epochs=1, device="cpu")
        assert len(manifest["members"]) == 2 and not manifest["failures"]
    assert same_members(tmp_path / "inline", tmp_path / "process")
