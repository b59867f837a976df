"""The executor on a real local Ray (2 CPUs, started once for this module; or the cluster in $RAY_ADDRESS):
same records as in-process, failures reported without losing others, cancellation, a long job's live
progress and Cancel. Ray-free checks come first and never import ray."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.executor import InlineExecutor, Job, JobFailed, ResultLog, comparable
from engine.progress import RunCancelled
from tests.scale_env import make_tiny_assets

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return make_tiny_assets(tmp_path_factory.mktemp("assets"))


@pytest.fixture(scope="module")
def ray_executor():
    from engine.ray_executor import RayExecutor

    executor = RayExecutor(num_cpus=2)
    executor.start()
    yield executor
    executor.close()


# ------------------------------------------------------------------------------------------ no Ray
def test_inline_does_not_import_ray():
    code = ("import sys; from engine.executor import make_executor, Job; e = make_executor('inline'); "
            "print(list(e.run([Job('tests.scale_env:square', {'x': 3})]))[0].value); print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["{'x':", "3,", "'square':", "9}", "False"]


def test_inline_reports_a_failure_and_keeps_the_rest():
    jobs = [Job("tests.scale_env:fail_on", {"x": x, "bad": 1}, key=str(x)) for x in range(3)]
    seen = []
    results = list(InlineExecutor().run(jobs, on_progress=seen.append))
    assert [r.ok for r in results] == [True, False, True]
    assert "ValueError: bad input 1" in results[1].error and results[1].job.args == {"x": 1, "bad": 1}
    assert [p.step for p in seen] == [1, 2, 3] and seen[-1].metrics["failed"] == 1 and seen[-1].metrics["eta_s"] == 0


def test_result_log_resumes_and_ignores_a_torn_line(tmp_path):
    log = ResultLog(tmp_path / "cells.jsonl")
    log.append("a", {"x": 1})
    log.append("b", {"x": 2})
    with log.path.open("a") as handle:
        handle.write('{"key": "c", "val')   # the process died mid-write
    assert log.read() == {"a": {"x": 1}, "b": {"x": 2}}


def test_comparable_ignores_only_timing_fields():
    a = {"metrics": {"UA": 1.0}, "seconds": 3.0, "created": "x", "device": "CPU (2 threads)", "nested": [{"seconds": 1}]}
    b = {**a, "seconds": 9.0, "created": "y", "device": "NVIDIA H200", "nested": [{"seconds": 2}]}
    assert comparable(a) == comparable(b)
    assert comparable(a) != comparable({**a, "metrics": {"UA": 1.0000001}})


def test_job_validation():
    with pytest.raises(ValueError, match="module:function"):
        Job("square")
    with pytest.raises(ValueError, match="cpus"):
        Job("a:b", cpus=0)


# --------------------------------------------------------------------------------------------- Ray
def test_ray_reports_a_failure_and_the_others_finish(ray_executor):
    jobs = [Job("tests.scale_env:fail_on", {"x": x, "bad": 2}, key=str(x)) for x in range(4)]
    results = {r.job.key: r for r in ray_executor.run(jobs)}
    assert sorted(results) == ["0", "1", "2", "3"]
    assert [results[k].ok for k in "0123"] == [True, True, False, True]
    assert "ValueError: bad input 2" in results["2"].error and results["3"].value == {"x": 3}


def _cpus_free(executor, within: float = 60.0) -> bool:
    """Both CPUs free again: two quick jobs (one per CPU) finish while the cancelled 120 s sleeps would not."""
    start = time.perf_counter()
    results = list(executor.run([Job("tests.scale_env:square", {"x": i}, key=str(i), cpus=1) for i in range(2)]))
    return all(r.ok for r in results) and time.perf_counter() - start < within


def test_ray_cancels_outstanding_tasks(ray_executor):
    jobs = [Job("tests.scale_env:sleep_for", {"seconds": 120}, key=str(i)) for i in range(4)]
    start = time.perf_counter()
    with pytest.raises(RunCancelled):
        list(ray_executor.run(jobs, should_stop=lambda: time.perf_counter() - start > 1.5))
    assert time.perf_counter() - start < 10
    assert _cpus_free(ray_executor), "the cancelled tasks still hold the CPUs"
    # leaving the iteration early (what Ctrl-C in the consuming loop does) cancels too
    iterator = ray_executor.run([Job("tests.scale_env:sleep_for", {"seconds": 0.1}, key="quick")] +
                                [Job("tests.scale_env:sleep_for", {"seconds": 120}, key=str(i)) for i in range(3)])
    assert next(iterator).job.key == "quick"
    iterator.close()
    assert _cpus_free(ray_executor)


def test_ray_bench_cells_equal_inline(ray_executor, assets, tmp_path, monkeypatch):
    from engine.cli import main

    npz, original = assets
    monkeypatch.chdir(tmp_path)   # the Retrain reference cache (runs/bench-cache) lands here
    common = ["bench", "--dataset", str(npz), "--checkpoint", str(original), "--methods", "ga", "ft",
              "--scenarios", "class:1,2", "--seeds", "0", "--set", "ga.epochs=1", "--set", "ft.epochs=1",
              "--device", "cpu", "--cpus-per-task", "1"]
    assert main(common + ["--out", str(tmp_path / "inline")]) == 0
    assert main(common + ["--executor", "ray", "--out", str(tmp_path / "ray")]) == 0
    inline = json.loads((tmp_path / "inline.json").read_text())["rows"]
    ray_rows = json.loads((tmp_path / "ray.json").read_text())["rows"]
    assert len(inline) == 6 and [comparable(r) for r in inline] == [comparable(r) for r in ray_rows]


def test_ray_population_equals_inline(ray_executor, assets, tmp_path):
    from engine.population import build_population, same_members

    npz, _ = assets
    for name, executor in (("inline", InlineExecutor()), ("ray", ray_executor)):
        manifest = build_population(executor, dataset=str(npz), kind="shadow", count=3, out=tmp_path / name,
                                    epochs=1, device="cpu")
        assert len(manifest["members"]) == 3 and not manifest["failures"]
    assert same_members(tmp_path / "inline", tmp_path / "ray")   # records and the weights' sha256


def test_run_remote_streams_progress_and_returns(ray_executor):
    seen = []
    value = ray_executor.run_remote(Job("tests.scale_env:counting", {"steps": 10, "pause": 0.05}), seen.append)
    assert value == 10 and seen and seen[-1].step == 10 and seen[-1].stage == "counting"


def test_run_remote_cancel_stops_the_job(ray_executor):
    seen = []
    start = time.perf_counter()
    with pytest.raises(RunCancelled):
        ray_executor.run_remote(Job("tests.scale_env:counting", {"steps": 2000, "pause": 0.05}), seen.append,
                                should_stop=lambda: len(seen) >= 3)
    assert len(seen) >= 3 and seen[-1].step < 2000 and time.perf_counter() - start < 15
    assert _cpus_free(ray_executor)


def test_run_remote_raises_job_failed_with_config(ray_executor):
    with pytest.raises(JobFailed, match="bad input 5"):
        ray_executor.run_remote(Job("tests.scale_env:fail_on", {"x": 5, "bad": 5}))
    with pytest.raises(JobFailed, match="bad input 5"):
        InlineExecutor().run_remote(Job("tests.scale_env:fail_on", {"x": 5, "bad": 5}))
