"""The side-by-side comparison with prepared runs: the tour's WSS-CL run and its SalUn baseline (app/tour/, built by
python -m scripts.build_tour_run), copied into a private run folder. No training here: seconds on the 2-core CPU
(most of it AppTest starting the app)."""
import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from lab_env import REPO, fast_lab

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

APP = REPO / "app"
TOUR = APP / "tour" / "run"
BASELINE = APP / "tour" / "compare" / "salun"
CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(not (TOUR / "run.json").is_file() or not (BASELINE / "run.json").is_file(),
                                reason="needs the prepared tour runs (python -m scripts.build_tour_run)")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The two prepared runs as ordinary finished runs of a private run folder (the originals are not touched)."""
    root = tmp_path_factory.mktemp("runs")
    with fast_lab(root):
        for source, name in ((TOUR, "20261128T044633-wsscl-seed0"), (BASELINE, "20261128T050000-salun-seed0")):
            shutil.copytree(source, root / "fashion-mini" / name)
        yield root


def records(lab):
    from app import store

    by_method = {r["method"]: r for r in store.list_runs()}
    return [by_method["wsscl"], by_method["salun"]]


def open_page(page: str, at=None):
    from streamlit.testing.v1 import AppTest

    if at is None:
        at = AppTest.from_file(str(APP / "streamlit_app.py"), default_timeout=120)
        at.run()
    at.switch_page(f"views/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_comparison_values_come_from_the_records(lab):
    from app import comparison, pipeline

    wsscl, salun = records(lab)
    result = comparison.compare([wsscl, salun], load_insights=pipeline.load_insights)
    assert len(result.columns) == 3 and result.columns[-1] == "Retrain"
    assert result.columns[0].startswith("WSS-CL") and result.columns[1].startswith("SalUn")
    for key in ("UA", "RA", "TA", "MIA"):
        assert result.value(key, result.columns[0]) == pytest.approx(wsscl["metrics"][key])
        assert result.value(key, result.columns[1]) == pytest.approx(salun["metrics"][key])
        assert result.value(key, "Retrain") == pytest.approx(wsscl["reference_metrics"][key])
        i = result.rows.index(key)
        assert result.deltas[i, 1] == pytest.approx(salun["metrics"][key] - wsscl["metrics"][key])
    # Avg. Gap recomputed from the four metrics equals the one each run recorded
    assert result.value("Avg. Gap", result.columns[0]) == pytest.approx(wsscl["avg_gap"])
    assert result.value("Avg. Gap", result.columns[1]) == pytest.approx(salun["avg_gap"])
    gap = result.rows.index("Avg. Gap")
    lower = 0 if wsscl["avg_gap"] <= salun["avg_gap"] else 1
    assert result.best[gap, lower] and not result.best[gap, 2]          # Retrain is the target, never "best"
    # one shared UMAP frame: the same sampled points, the original drawn once
    shared = result.shared_map
    assert shared is not None, result.map_note
    assert shared.panels[0] == "original" and shared.panels[-1] == "Retrain" and len(shared.panels) == 4
    assert shared.coordinates.shape[:2] == (4, len(shared.sample_ids))
    assert set(result.roc) == set(result.columns)


def test_runs_on_different_forget_sets_are_refused(lab):
    from app import comparison, pipeline

    wsscl, salun = records(lab)
    other = {**salun, "spec": {**salun["spec"], "classes": [2]}, "spec_text": "class Pullover"}
    with pytest.raises(ValueError, match="different sets"):
        comparison.compare([wsscl, other], load_insights=pipeline.load_insights)
    with pytest.raises(ValueError, match="at least two"):
        comparison.compare([wsscl], load_insights=pipeline.load_insights)


def test_tick_two_runs_on_compare_and_see_them_side_by_side(lab):
    at = open_page("compare")
    at.segmented_control(key="compare-scope").set_value("all").run()    # the prepared runs are not this session's
    ticks = [c for c in at.checkbox if c.key and c.key.startswith("tick-")]
    assert len(ticks) == 2
    assert at.button(key="side-open").disabled
    for tick in ticks:
        tick.check()
    at.run()
    assert not at.button(key="side-open").disabled
    at.button(key="side-open").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title][:1] == ["Side by side"]
    table = at.dataframe[0].value
    assert list(table.columns)[-1] == "Retrain" and "Avg. Gap" in table.index
    charts = at.get("plotly_chart")
    kinds = [json.loads(c.proto.spec)["data"][0]["type"] for c in charts]
    assert kinds.count("indicator") == 12                      # four gauges × (two runs + Retrain)
    assert sum(k == "scattergl" for k in kinds) == 4           # original, WSS-CL, SalUn, Retrain in one frame
    assert len(at.get("download_button")) == 1
    assert any("Forget set: **class Trouser**" in m.value for m in at.markdown)


def test_side_by_side_page_picks_a_group_by_itself(lab):
    at = open_page("side_by_side")
    assert [t.value for t in at.title][:1] == ["Side by side"]
    assert len(at.multiselect(key="side-runs").value) == 2
    at.multiselect(key="side-runs").unselect(at.multiselect(key="side-runs").value[0]).run()
    assert not at.exception
    assert any("at least two" in w.value for w in at.warning)


def test_tour_ends_with_the_prepared_comparison(lab):
    at = open_page("teaching")
    for _ in range(9):
        at.button(key="tour-next").click().run()
        assert not at.exception, [e.value for e in at.exception]
    assert at.subheader[0].value == "10. Side by side with a baseline"
    assert at.button(key="tour-next").disabled
    assert any("SalUn" in m.value for m in at.markdown)
    assert len(at.get("plotly_chart")) >= 6


class _Resources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.external, self.scripts = [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.scripts += tag == "script"
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            if value and not value.startswith(("#", "data:")):
                self.external.append((tag, name, value))
        if tag == "link":
            self.external.append((tag, "link", attrs.get("href")))


def comparison_page(lab) -> str:
    from app import comparison, pipeline, report

    result = comparison.compare(records(lab), load_insights=pipeline.load_insights)
    return report.comparison_html(result, [f"class {i}" for i in range(10)])


def test_comparison_export_is_self_contained(lab):
    page = comparison_page(lab)
    parser = _Resources()
    parser.feed(page)
    assert parser.external == []                               # nothing to fetch: no src/href/link URLs
    assert "plotly.js v" in page or "plotly.js" in page.lower()        # the library itself, inline
    assert page.count('class="plotly-graph-div"') >= 1 + 12 + 1 + 4 + 1
    assert page.count("★") >= 1 and "Retrain" in page


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium")
def test_comparison_export_opens_offline_in_chromium(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    from test_browser import CHROMIUM_ARGS

    path = tmp_path / "comparison.html"
    path.write_text(comparison_page(lab))
    requested = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(offline=True)
        context.route("**/*", lambda route: (requested.append(route.request.url), route.abort())
                      if not route.request.url.startswith("file:") else route.continue_())
        page = context.new_page()
        page.goto(path.as_uri(), wait_until="domcontentloaded", timeout=180_000)   # 4.7 MB inline, a loaded CPU
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length >= 19",
                               timeout=180_000)
        assert page.evaluate("typeof window.Plotly") == "object"
        browser.close()
    assert requested == []


def test_results_follow_the_current_run_and_a_pick_sticks(lab):
    """The run picker's widget state must not win over a run that finished since (the job panel makes it the
    session's current run), and a user's pick must hold across pages."""
    wsscl, salun = records(lab)
    at = open_page("results")
    shown = lambda: [m.value for m in at.markdown if m.value.startswith("Showing ")]   # noqa: E731
    at.selectbox(key="run-pick-results").select(salun["id"]).run()
    assert shown() == [f"Showing **SalUn · class Trouser · {salun['created'][11:19]} UTC**"]
    at = open_page("features", at)                      # the pick holds on every insight page
    assert shown()[0].startswith("Showing **SalUn")
    at = open_page("results", at)
    assert shown()[0].startswith("Showing **SalUn")
    at.session_state["run_id"] = wsscl["id"]            # what the job panel does when a run's metrics land
    at.run()
    assert not at.exception
    assert shown()[0].startswith("Showing **WSS-CL") and at.selectbox(key="run-pick-results").value == wsscl["id"]
