"""Limits: the run directory's size cap (oldest ended runs first; never a live run, a reference, the assets)
and bounded caches (Streamlit caches with arguments, the insights cache, the job list, the original's metrics)."""
import ast
import os
from pathlib import Path

import numpy as np
import pytest

import engine
from app import store
from lab_env import sha256

REPO = Path(__file__).resolve().parent.parent
KB = 1024


def make_run(root: Path, name: str, created: str, status: str, size: int, **extra) -> Path:
    run = root / "fashion-mini" / name
    run.mkdir(parents=True)
    (run / "model.safetensors").write_bytes(os.urandom(size))
    engine.runs.write_status(run, {"created": created, "method": "wsscl", **extra}, status)
    return run


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARNING_LAB_RUNS", str(tmp_path))
    return tmp_path


def test_size_cap_deletes_oldest_ended_runs_first_and_spares_live_runs_and_references(runs, monkeypatch):
    oldest = make_run(runs, "a-oldest", "2026-01-01T00:00:00", "finished", 300 * KB)
    dead = make_run(runs, "b-dead", "2026-01-02T00:00:00", "running", 300 * KB, pid=2 ** 22 + 12345)  # no such pid
    live = make_run(runs, "c-live", "2026-01-03T00:00:00", "running", 300 * KB, pid=os.getpid(),
                    process=store.PROCESS_TOKEN)
    newest = make_run(runs, "d-newest", "2026-01-04T00:00:00", "cancelled", 300 * KB)
    reference = store.reference_dir() / "fashion-mini-abc.safetensors"
    reference.write_bytes(os.urandom(300 * KB))
    cache = runs / "_insight_cache"
    cache.mkdir()
    (cache / "k1.npz").write_bytes(os.urandom(100 * KB))

    assert store.enforce_size_cap(10 * 1024 * KB) == []          # under the cap: nothing happens
    deleted = store.enforce_size_cap(1100 * KB)       # 1.6 MB on disk → the two oldest ended runs go (1.0 MB left)
    assert deleted == [oldest.resolve(), dead.resolve()]
    assert not oldest.exists() and not dead.exists()
    assert live.exists() and newest.exists() and reference.exists() and (cache / "k1.npz").exists()

    deleted = store.enforce_size_cap(1)                           # impossible cap: everything deletable goes
    assert deleted == [newest.resolve(), (cache / "k1.npz").resolve()]
    assert live.exists() and reference.exists()                   # a live run and references: never
    assert [r["status"] for r in store.list_runs()] == ["running"]


def test_size_cap_never_touches_the_assets_even_when_the_run_root_holds_them(tmp_path, monkeypatch):
    fake_repo = tmp_path / "repo"
    shipped = make_run(fake_repo / "assets", "tour", "2025-01-01T00:00:00", "finished", 200 * KB)
    old = make_run(fake_repo / "runs", "old", "2025-06-01T00:00:00", "finished", 200 * KB)
    monkeypatch.setattr(store, "REPO", fake_repo)
    monkeypatch.setenv("UNLEARNING_LAB_RUNS", str(fake_repo))     # a careless setting: the root is the repo
    deleted = store.enforce_size_cap(1)
    assert deleted == [old.resolve()]
    assert (shipped / "model.safetensors").is_file()


def test_new_runs_make_room_under_the_env_cap(runs, monkeypatch):
    olds = [make_run(runs, f"old-{i}", f"2026-01-0{i + 1}T00:00:00", "finished", 400 * KB) for i in range(3)]
    monkeypatch.setenv("UNLEARNING_LAB_RUNS_MAX_MB", "1")
    assert store.max_bytes() == 1024 * KB
    fresh = store.new_run_dir("wsscl", 0, "fashion-mini")
    assert fresh.is_dir()
    assert [p.exists() for p in olds] == [False, True, True]        # 1.2 MB → 0.8 MB: only the oldest went


def test_real_assets_are_untouched_by_a_full_clean_up(runs):
    originals = {p: sha256(p) for p in (REPO / "assets").rglob("*") if p.is_file()}
    make_run(runs, "x", "2026-01-01T00:00:00", "failed", 50 * KB)
    store.enforce_size_cap(0)
    assert {p: sha256(p) for p in (REPO / "assets").rglob("*") if p.is_file()} == originals


def test_every_streamlit_cache_with_arguments_is_bounded():
    """A cache keyed by user input (ids, specs, classes) must have max_entries; argument-free ones hold one value."""
    unbounded = []
    for path in (REPO / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef) or not (node.args.args or node.args.kwonlyargs):
                continue
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                name = ast.unparse(call.func if call else decorator)
                if name in ("st.cache_data", "st.cache_resource"):
                    keywords = {k.arg for k in call.keywords} if call else set()
                    if "max_entries" not in keywords:
                        unbounded.append(f"{path.name}:{node.name}")
    assert unbounded == []


def test_insights_cache_is_an_lru_of_bounded_size(tmp_path):
    cache = engine.InsightsCache(None, capacity=3)
    for k in range(10):
        cache.put(f"k{k}", {"a": np.full(4, k)})
    assert list(cache.memory) == ["k7", "k8", "k9"]
    assert cache.get("k0") is None and cache.get("k9")["a"][0] == 9


def test_job_manager_forgets_old_ended_jobs_but_never_live_ones():
    from app.jobs import JobManager

    manager = JobManager("limits")
    manager.ENDED_LIMIT = 5
    manager.MAX_WAITING = 20           # one owner queues all twelve at once here (the per-session limit: test_fairness)
    try:
        ids = [manager.submit("s", "unlearn", str(n), {}, lambda job, report, stop: {}).id for n in range(12)]
        for job_id in ids:
            manager.wait(job_id, 10)
        last = manager.submit("s", "unlearn", "last", {}, lambda job, report, stop: {})
        manager.wait(last.id, 10)
        kept = [j["id"] for j in manager.jobs()]
        assert len(kept) <= 6 and last.id in kept and ids[-1] in kept and ids[0] not in kept
    finally:
        manager.shutdown()


def test_original_metrics_cache_is_bounded(monkeypatch):
    from engine import workflow

    dataset = engine.load_dataset("fashion-mini")
    model, _ = engine.load_original(dataset)
    monkeypatch.setattr(workflow, "EVAL_CACHE_LIMIT", 2)
    monkeypatch.setattr(workflow, "_EVAL_CACHE", {})
    for c in (3, 4, 5):
        spec = engine.ForgetSpec(classes=(c,))
        split = engine.make_split(dataset, spec)
        metrics = workflow.original_metrics(model, dataset, split, engine.resolve_device("cpu"))
        assert metrics["UA"] < 50                                  # the original still knows class c
    assert len(workflow._EVAL_CACHE) == 2
