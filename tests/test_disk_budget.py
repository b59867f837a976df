"""The run folder's size cap: fair per owner (one heavy uploader never wipes another's finished runs or the
insight cache), uploads counted and pruned (least recently used first, never one a live run starts from), the
setting validated (garbage is refused, not replaced by the default), and the cap holding after a run too."""
import os
import time
from pathlib import Path

import pytest

import engine
from app import store

KB = 1024


def make_run(root: Path, name: str, created: str, status: str, size: int, owner=None, **extra) -> Path:
    run = root / "fashion-mini" / name
    run.mkdir(parents=True)
    (run / "model.safetensors").write_bytes(os.urandom(size))
    engine.runs.write_status(run, {"created": created, "method": "wsscl", "owner": owner, **extra}, status)
    return run


def make_upload(root: Path, owner: str, n: int, size: int, age: float) -> Path:
    folder = root / "_uploads" / owner
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"{n:016x}.safetensors"
    model.write_bytes(os.urandom(size))
    model.with_suffix(".json").write_text("{}")
    stamp = time.time() - age
    os.utime(model, (stamp, stamp))
    return model


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNING_LAB_RUNS", str(tmp_path))
    monkeypatch.delenv("UNLEARNING_LAB_RUNS_MAX_MB", raising=False)
    return tmp_path


def test_one_heavy_uploader_pays_for_their_own_space(runs):
    light = [make_run(runs, f"light-{i}", f"2026-01-0{i + 1}T00:00:00", "finished", 100 * KB, owner="light")
             for i in range(2)]
    heavy_run = make_run(runs, "heavy-run", "2026-01-05T00:00:00", "finished", 100 * KB, owner="heavy")
    uploads = [make_upload(runs, "heavy", n, 50 * KB, age=1000 - n) for n in range(40)]    # 2 MB, oldest first
    cache = runs / "_insight_cache"
    cache.mkdir()
    (cache / "k.npz").write_bytes(os.urandom(100 * KB))
    limit = 1000 * KB
    deleted = store.enforce_size_cap(limit)
    assert store._size(runs.resolve()) <= limit                          # the folder fits afterwards
    assert all(r.exists() for r in light) and (cache / "k.npz").exists()  # the other user and the cache: untouched
    gone = [p for p in uploads if not p.exists()]
    assert gone and gone == uploads[: len(gone)]                         # the heavy user's oldest uploads first
    assert not any(p.with_suffix(".json").exists() for p in gone)        # each with its sidecar
    assert set(deleted) <= {p.resolve() for p in [*uploads, heavy_run]}


def test_the_heaviest_owner_loses_their_oldest_ended_runs_first(runs):
    a = [make_run(runs, f"a-{i}", f"2026-01-0{i + 1}T00:00:00", "finished", 200 * KB, owner="a") for i in range(4)]
    b = make_run(runs, "b-0", "2025-12-01T00:00:00", "finished", 200 * KB, owner="b")   # older, but b uses less
    store.enforce_size_cap(700 * KB)
    assert b.exists() and [r.exists() for r in a] == [False, False, True, True]


def test_an_upload_a_live_run_uses_is_kept_and_the_cap_spares_the_run_just_written(runs):
    used = make_upload(runs, "u", 1, 300 * KB, age=5000)          # the oldest upload, but a queued run needs it
    spare = make_upload(runs, "u", 2, 300 * KB, age=10)
    make_run(runs, "queued", "2026-01-01T00:00:00", "queued", 1 * KB, owner="u", original=str(used),
             pid=os.getpid(), process=engine.PROCESS_TOKEN)
    newest = make_run(runs, "new", "2026-01-02T00:00:00", "finished", 300 * KB, owner="u")
    store.enforce_size_cap(100 * KB, keep=newest)
    assert used.exists() and newest.exists() and not spare.exists()


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "0", "-1", "abc", "1e400"])
def test_a_size_cap_that_is_not_a_positive_finite_number_is_refused_and_deletes_nothing(runs, monkeypatch, value):
    old = make_run(runs, "old", "2026-01-01T00:00:00", "finished", 100 * KB)
    monkeypatch.setenv("UNLEARNING_LAB_RUNS_MAX_MB", value)
    with pytest.raises(store.StorageError, match="UNLEARNING_LAB_RUNS_MAX_MB=.*positive, finite number"):
        store.max_bytes()
    with pytest.raises(store.StorageError):
        store.new_run_dir("wsscl", 0, "fashion-mini")              # no run starts; was: every run deleted / failed
    assert old.exists() and "UNLEARNING_LAB_RUNS_MAX_MB" in store.problem()


@pytest.mark.parametrize("value, expected", [("", store.DEFAULT_MAX_MB * 1024 * KB), ("1.5", int(1.5 * 1024 * KB)),
                                             (" 3 ", 3 * 1024 * KB)])
def test_a_valid_size_cap_is_read(runs, monkeypatch, value, expected):
    monkeypatch.setenv("UNLEARNING_LAB_RUNS_MAX_MB", value)
    assert store.max_bytes() == expected and store.problem() is None


def test_the_cap_holds_after_a_run_too(runs, monkeypatch):
    """A real (fast) run through the app's job: the folder fits before it starts and again after its files are
    written — the old runs make room, the new run stays."""
    import importlib

    monkeypatch.setenv("UNLEARNING_LAB_FAST", "1")
    from app import pipeline, settings
    from app.jobs import JobManager

    importlib.reload(settings)
    try:
        olds = [make_run(runs, f"old-{i}", f"2026-01-0{i + 1}T00:00:00", "finished", 300 * KB) for i in range(3)]
        monkeypatch.setenv("UNLEARNING_LAB_RUNS_MAX_MB", "1.5")
        assert store._size(runs) <= store.max_bytes()
        request = pipeline.run_request("ga", pipeline.default_config("ga", "class"), engine.ForgetSpec(classes=(3,)),
                                       device="cpu")
        manager = JobManager("disk")
        try:
            run_dir = store.new_run_dir("ga", 0, "fashion-mini")
            metrics_saved = []

            def report(stage, *args, **kwargs):      # insights are not the point here: stopped once metrics are saved
                if stage == "metrics ready":
                    metrics_saved.append(stage)

            job = manager.submit("me", "unlearn", "ga", request, lambda job, _, stop: pipeline.unlearn_work(
                job, report, lambda: bool(metrics_saved), run_dir=run_dir))
            done = manager.wait(job.id, 600)
        finally:
            manager.shutdown()
        assert done["status"] == "finished", done["error"]
        assert (run_dir / "model.safetensors").is_file()
        assert store._size(runs) <= store.max_bytes()                        # was: above the cap after the run
        assert not all(p.exists() for p in olds)
    finally:
        monkeypatch.delenv("UNLEARNING_LAB_FAST")
        importlib.reload(settings)
