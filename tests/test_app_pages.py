"""Every page of the app under `AppTest`, with fast engine settings (UNLEARNING_LAB_FAST=1, a temporary run
directory): empty state, picking a class, running WSS-CL through the Run form, and every results page
with the finished run. One real run (≈ 30–60 s on the 2-core CPU, most of it the first UMAP) is shared."""
import ast
import json
import os
import time
from pathlib import Path

import pytest
from lab_env import fast_lab

# As in app/streamlit_app.py: torch is used from several threads here (the job worker, AppTest's script
# threads); OpenMP's spin-waiting makes that several times slower. Effective only if torch is not loaded yet.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

APP = Path(__file__).resolve().parent.parent / "app"
PAGES = ["learn", "teaching", "forget", "run", "results", "saliency", "features", "privacy", "audit", "compare"]
TITLES = {"learn": "Unlearning Lab", "teaching": "Guided tour", "forget": "Choose what to forget",
          "run": "Run unlearning", "results": "Results", "saliency": "Weight saliency", "features": "Feature space",
          "privacy": "Privacy", "audit": "Per-example audit", "compare": "Compare runs"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Fast settings and an empty run directory for the whole module (env read by app.settings at import)."""
    with fast_lab(tmp_path_factory.mktemp("runs")) as settings:
        assert settings.FAST
        yield Path(os.environ["UNLEARNING_LAB_RUNS"])
        from app.jobs import manager
        for job in manager().jobs():
            manager().cancel(job["id"])


def open_page(page: str, at=None):
    from streamlit.testing.v1 import AppTest

    if at is None:
        at = AppTest.from_file(str(APP / "streamlit_app.py"), default_timeout=120)
        at.run()
    if page != "learn":
        at.switch_page(f"views/{page}.py")
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title][:1] == [TITLES[page]]
    return at


def wait_for_jobs(timeout=240):
    """Until every unlearning job has ended (a background Retrain reference may go on)."""
    from app.jobs import TERMINAL, manager

    deadline = time.time() + timeout
    while time.time() < deadline:
        if all(j["status"] in TERMINAL for j in manager().jobs() if j["kind"] == "unlearn"):
            return manager().jobs()
        time.sleep(0.2)
    raise TimeoutError([(j["title"], j["status"], j["stage"]) for j in manager().jobs()])


def test_every_page_renders_with_no_runs(lab):
    for page in PAGES:
        at = open_page(page)
        if page in ("results", "saliency", "features", "privacy", "audit"):
            assert any("No finished run yet" in i.value for i in at.info)
    landing = open_page("learn")
    assert any(m.label.startswith("Original model") for m in landing.metric)
    assert "100 − accuracy on the forget set" in " ".join(m.value for m in landing.markdown)


def test_pick_a_class_run_wsscl_and_see_every_page(lab):
    at = open_page("forget")
    at.checkbox(key="class-1").check().run()
    assert not at.exception
    assert any("class Trouser" in m.label for m in at.metric)
    assert any("images" in m.value for m in at.metric)

    at = open_page("run", at)
    assert at.selectbox(key="method").value == "wsscl"        # WSS-CL is the default
    assert "Device" in " ".join(m.value for m in at.markdown)
    assert at.number_input(key="cfg-wsscl-class-epochs").value == 1  # fast mode shrinks the (class-wise) defaults
    at.button(key="start").click().run()
    assert not at.exception, [e.value for e in at.exception]
    jobs = wait_for_jobs()
    unlearn = [j for j in jobs if j["kind"] == "unlearn"]
    assert [j["status"] for j in unlearn] == ["finished"], [(j["status"], j["error"]) for j in unlearn]

    at = open_page("results", at)
    charts = at.get("plotly_chart")
    assert len(charts) >= 3                                     # the gauges (one figure), per-class bars, confusion
    gauges = json.loads(charts[0].proto.spec)["data"]
    assert len(gauges) == 4 and all(g["type"] == "indicator" and g["mode"].startswith("gauge+number") for g in gauges)
    assert any(m.label.startswith("Avg. Gap") for m in at.metric)

    for page in ("saliency", "features", "privacy", "compare", "teaching"):
        at = open_page(page, at)
        if page != "compare":
            assert len(at.get("plotly_chart")) >= 1, page
    at = open_page("compare", at)
    table = at.dataframe[0].value
    assert list(table["method"].str[:6]) == ["WSS-CL"] and table["UA"].iloc[0] >= 0
    assert len(at.get("download_button")) == 2


def test_audit_page_shows_the_quick_audit_and_runs_the_deep_one(lab):
    """The per-example audit of the run above: LiRA against the shipped shadows at once; the deep audit (fast mode:
    3 runs, against the shipped Retrains of class 1) as a job, then forgetting quality and the ε histogram."""
    from app import store

    if not any(r.get("method") == "wsscl" and r.get("insights") == "ready" for r in store.list_runs()):
        pytest.skip("needs the run of the previous test")
    at = open_page("audit")
    labels = {m.label: m.value for m in at.metric}
    assert labels["Forgetting quality"] == "—" and 0.0 <= float(labels["Attacker AUC (LiRA)"]) <= 1.0
    assert len(at.get("plotly_chart")) == 1                      # the clicked image against its populations
    at.button(key="deep-audit").click().run()
    assert not at.exception, [e.value for e in at.exception]
    from app.jobs import TERMINAL, manager

    deadline = time.time() + 240
    while time.time() < deadline and any(j["kind"] == "audit" and j["status"] not in TERMINAL for j in manager().jobs()):
        time.sleep(0.5)
    audits = [j for j in manager().jobs() if j["kind"] == "audit"]
    assert [j["status"] for j in audits] == ["finished"], [(j["status"], j["error"]) for j in audits]
    at = open_page("audit")
    labels = {m.label: m.value for m in at.metric}
    assert 0.0 <= float(labels["Forgetting quality"]) <= 1.5
    assert len(at.get("plotly_chart")) == 2                      # the ε histogram too


def test_teaching_tour_steps_through_the_prepared_run(lab):
    from app import store

    if not any(r.get("method") == "wsscl" and r.get("insights") == "ready" for r in store.list_runs()):
        pytest.skip("needs the run of the previous test")
    at = open_page("teaching")
    seen = []
    for step in range(10):
        seen.append(at.subheader[0].value)
        if step in (2, 3, 4, 5, 6, 7, 9):                     # the steps drawn from the run's figures
            assert len(at.get("plotly_chart")) >= 1, seen[-1]
        if step < 9:
            at.button(key="tour-next").click().run()
            assert not at.exception, [e.value for e in at.exception]
    assert seen[0].startswith("1.") and seen[-1].startswith("10.")
    assert at.button(key="tour-next").disabled


def test_exports_are_self_contained(lab):
    from app import pipeline, report, store

    runs = [r for r in store.list_runs() if r.get("status") == "finished"]
    if not runs:
        pytest.skip("needs the run of the previous test")
    run = runs[0]
    record = json.loads(report.run_json(run))
    assert record["method"] == "wsscl" and "UA" in record["metrics"]
    page = report.run_html(run, ("c",) * 10, pipeline.load_insights(run))
    assert page.startswith("<!doctype html>") and "plotly" in page.lower()
    assert "<script src=" not in page and "<link " not in page      # plotly.js inline, nothing fetched
    assert page.count("class=\"plotly-graph-div\"") >= 7


def test_forget_set_by_images_and_by_fraction(lab):
    at = open_page("forget")
    at.segmented_control(key="forget-how").set_value("samples").run()
    assert not at.exception
    at.button[1].click().run()                                   # "Add the whole page"
    assert any("chosen samples" in m.label for m in at.metric)
    at.segmented_control(key="forget-how").set_value("fraction").run()
    at.slider(key="fraction").set_value(0.2).run()
    assert not at.exception
    assert any("random 20%" in m.label for m in at.metric)
    at.segmented_control(key="forget-how").set_value("map").run()
    assert not at.exception and len(at.get("plotly_chart")) == 1


def test_a_cancelled_run_leaves_a_cancelled_record_and_the_app_working(lab):
    import engine
    from app import pipeline, store
    from app.jobs import manager

    job = pipeline.submit_run("someone", pipeline.run_request("retrain", {"epochs": 3},
                                                              engine.ForgetSpec(classes=(2,))))
    while manager().snapshot(job.id)["stage"] in ("", "preparing", "evaluating the original model"):
        time.sleep(0.05)
    manager().cancel(job.id)
    assert manager().wait(job.id, 10)["status"] == "cancelled"
    assert any(r.get("status") == "cancelled" and r.get("method") == "retrain" for r in store.list_runs())
    open_page("results")
    open_page("compare").segmented_control(key="compare-scope").set_value("all").run()


def test_app_uses_only_the_engines_public_api():
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("engine."):
                pytest.fail(f"{path.name} imports {node.module}: use `import engine` names only")
            if isinstance(node, ast.Import) and any(a.name.startswith("engine.") for a in node.names):
                pytest.fail(f"{path.name} imports a private engine module")
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "engine":
                import engine
                # a listed name, never a module (engine.runs.x would reach past the public API)
                assert node.attr in engine.__all__, f"{path.name}: engine.{node.attr} is not in engine.__all__"
            if isinstance(node, ast.ImportFrom) and node.module == "engine":
                import engine
                for alias in node.names:
                    assert alias.name in engine.__all__, f"{path.name}: from engine import {alias.name}"


def test_session_state_is_touched_only_by_state_module():
    for path in APP.rglob("*.py"):
        if path.name != "state.py":
            assert "session_state" not in path.read_text(), path.name
