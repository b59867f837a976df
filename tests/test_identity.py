"""Identical runs computed once (app/sharing.py, engine/identity.py): a request equal to a finished run is served
that run, one equal to a queued run joins it, any change of setting or seed gets a run of its own, and the served
record is exactly what a fresh run computes (timing and owner aside)."""
import importlib
import threading

import pytest
import torch

import engine

TIMING_AND_OWNER = {"created", "seconds", "owner", "job", "pid", "process", "path", "id"}


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNING_LAB_FAST", "1")
    monkeypatch.setenv("UNLEARNING_LAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("UNLEARNING_LAB_PREPARED", str(tmp_path / "prepared"))
    from app import jobs, pipeline, settings
    importlib.reload(settings)
    monkeypatch.setattr(pipeline, "compute_insights", lambda *a, **k: None)   # metrics are what is compared here
    manager = jobs.JobManager("identity")
    monkeypatch.setattr(jobs, "_MANAGER", manager)
    yield manager
    manager.shutdown()
    monkeypatch.delenv("UNLEARNING_LAB_FAST")
    importlib.reload(settings)


def request(**changes):
    from app import pipeline

    values = {**pipeline.default_config("ft", "class"), **changes.pop("config", {})}
    return pipeline.run_request("ft", values, engine.ForgetSpec(classes=(changes.pop("cls", 3),)), **changes)


def test_identity_names_everything_that_changes_the_numbers():
    base = request()
    assert base.identity(True) == request().identity(True)
    changed = [request(seed=1), request(cls=4), request(config={"lr": base.config.lr * 2}), ]
    assert len({base.identity(True), base.identity(False), *(r.identity(True) for r in changed)}) == 5
    record = engine.RunRecord(method="ft", config=base.config.to_dict(), seed=0, forget=base.forget,
                              dataset=base.dataset, device=engine.device_name(torch.device("cpu")), fast=True,
                              versions={"torch": torch.__version__})
    assert engine.record_identity(record) == base.identity(True)      # records written before identities existed


def test_the_guided_tours_run_is_the_default_trouser_run():
    from app import pipeline, sharing

    tour = engine.read_record(sharing.TOUR / "run")
    asked = pipeline.run_request("wsscl", pipeline.default_config("wsscl", "class"), engine.ForgetSpec(classes=(1,)))
    if engine.device_class(tour.device) != engine.device_class(torch.device("cpu")):
        # built on a CPU that trains in bf16 and served here on one that does not (or the reverse): this machine
        # computes other numbers, so the tour's run must not stand in for its own
        assert engine.record_identity(tour) != asked.identity(False)
        pytest.skip(f"the tour was built on a {engine.device_class(tour.device)} machine; this is "
                    f"{engine.device_class(torch.device('cpu'))}")
    assert engine.record_identity(tour) == asked.identity(False)
    assert sharing.find(asked.identity(False)) == sharing.TOUR / "run"


def test_a_queued_run_is_joined_and_a_finished_one_shared_exactly_as_a_fresh_run(lab):
    from app import pipeline, store

    gate = threading.Event()
    lab.submit("someone", "unlearn", "blocker", {}, lambda job, report, stop: {"waited": gate.wait(60)})
    first = pipeline.start_run("alice", request())
    joined = pipeline.start_run("bob", request())
    own_seed = pipeline.start_run("carol", request(seed=1))
    assert (first.how, joined.how, own_seed.how) == ("new", "joined", "new")
    assert joined.job_id == first.job_id
    assert [j["id"] for j in lab.jobs("bob")] == [first.job_id]          # bob sees the run he joined
    gate.set()
    done = lab.wait(first.job_id, 900)
    assert done["status"] == "finished", done["error"]
    lab.wait(own_seed.job_id, 900)

    shared = pipeline.start_run("dave", request())                        # finished: served at once
    assert shared.how == "shared" and shared.run_id == done["result"]["run_id"]
    fresh = lab.wait(pipeline.submit_run("erin", request()).id, 900)      # "Run it again myself"
    assert fresh["status"] == "finished" and fresh["result"]["run_id"] != shared.run_id
    a, b = store.load_run(shared.run_id), store.load_run(fresh["result"]["run_id"])
    assert set(a) == set(b)
    differing = sorted(k for k in a if k not in TIMING_AND_OWNER | {"metrics"} and a[k] != b[k])
    assert differing == [], differing
    untimed = [{k: v for k, v in r["metrics"].items() if not k.endswith("_seconds")} for r in (a, b)]
    assert untimed[0] == untimed[1]                                       # eval_seconds is a timing figure
    assert set(a["metrics"]) - set(untimed[0]) == {"eval_seconds"}
    assert a["identity"] == b["identity"] == request().identity(True)
    weights = [engine.load_checkpoint(f"{r['path']}/model.safetensors")[0].state_dict() for r in (a, b)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    seeded = store.load_run(lab.snapshot(own_seed.job_id)["result"]["run_id"])
    assert seeded["metrics"] != a["metrics"] or seeded["history"] != a["history"]   # its own run


def test_uploaded_originals_are_never_shared(lab, tmp_path):
    from app import pipeline

    upload = engine.original_path("fashion-mini")
    mine = request(original=upload)
    started = [pipeline.start_run(owner, mine) for owner in ("alice", "bob")]
    assert [s.how for s in started] == ["new", "new"]
    for s in started:
        lab.cancel(s.job_id)


def test_device_class_reads_past_a_placement():
    from engine.identity import device_class

    assert [device_class(d) for d in ("CPU (2 threads)", "worker process · CPU (2 threads)",
                                      "Ray cluster · CPU (1 threads)", "Ray cluster · NVIDIA H200", "cuda:0", None,
                                      "CPU (2 threads, bf16)", "worker process · CPU (2 threads, bf16)")] \
        == ["cpu", "cpu", "cpu", "cuda", "cuda", "cpu", "cpu-bf16", "cpu-bf16"]


def test_a_cpu_that_trains_in_bf16_is_a_device_class_of_its_own(monkeypatch):
    from engine import training
    from engine.identity import device_class

    for forced, expected, precision in (("1", "cpu-bf16", "bf16"), ("0", "cpu", "fp32")):
        monkeypatch.setenv("UNLEARNING_LAB_CPU_BF16", forced)
        training.native_cpu_bf16.cache_clear()
        assert device_class(torch.device("cpu")) == expected
        assert device_class(training.device_name(torch.device("cpu"))) == expected
        assert training.precision(torch.device("cpu")) == precision
        assert training.precision(torch.device("cpu"), cpu_bf16=False) == "fp32"
    training.native_cpu_bf16.cache_clear()
