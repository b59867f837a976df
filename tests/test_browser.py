"""End to end in a real browser: open the app, pick a class, run WSS-CL (fast config), see the gauges and the
UMAP. Headless Debian Chromium driven by Playwright's Python package; screenshots of every page go to
artifacts/browser/ (git-ignored) for a human to look at."""
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium at /usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    env = {**os.environ, "UNLEARNING_LAB_FAST": "1", "UNLEARNING_LAB_RUNS": str(tmp_path_factory.mktemp("runs")),
           "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(REPO / ".numba_cache"))}
    log = open(tmp_path_factory.mktemp("log") / "streamlit.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(REPO / "app/streamlit_app.py"),
                                "--server.headless", "true", "--server.port", str(port),
                                "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                               cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("streamlit did not become healthy in 60 s")
    yield url
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        yield page
        browser.close()


def go(page, title: str):
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()


def idle(page, timeout=30.0):
    """Let the page settle: no script running for 1.2 s (its status widget shows only after a short delay, so
    one absent check is not enough). A live job's fragment keeps polling, so after ``timeout`` go on anyway:
    the assertions, not this wait, decide."""
    quiet, deadline = 0, time.time() + timeout
    while quiet < 4 and time.time() < deadline:
        page.wait_for_timeout(300)
        quiet = quiet + 1 if page.locator('[data-testid="stStatusWidget"]').count() == 0 else 0


def shot(page, name: str):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_pick_a_class_run_wsscl_see_gauges_and_umap(server, page):
    start = time.time()
    page.goto(server)
    page.get_by_text("WSS-CL in two stages").wait_for()
    page.get_by_text("Original model · test accuracy").wait_for()
    idle(page)
    shot(page, "01-home")

    go(page, "Choose what to forget")
    page.get_by_role("heading", name="Choose what to forget").first.wait_for()
    idle(page)      # until then the home page's strip captioned "Trouser" may still be shown, and a tick while
    box = page.get_by_text("Trouser", exact=True).first     # the page is still rerunning can be lost in that rerun
    box.click()
    try:
        page.get_by_text("class Trouser").first.wait_for(timeout=20_000)
    except Exception:                   # lost anyway (a slow first rerun): the box is still unticked, tick it again
        shot(page, "02-forget-class-retry")
        if not page.get_by_role("checkbox", name="Trouser", exact=True).first.is_checked():
            box.click()
        page.get_by_text("class Trouser").first.wait_for()
    idle(page)
    shot(page, "02-forget-class")

    go(page, "Run")
    page.get_by_text("Hyperparameters").wait_for()
    assert page.get_by_text("CPU").count() + page.get_by_text("NVIDIA").count() >= 1     # the device is shown
    idle(page)
    clicked = time.time()
    page.get_by_role("button", name="Start").click()
    page.get_by_text("WSS-CL").first.wait_for()
    page.wait_for_timeout(1500)
    shot(page, "03-run-progress")
    page.get_by_text("See the results").wait_for(timeout=240_000)
    go(page, "Results")
    gauges = page.locator(".js-plotly-plot", has_text="unlearning accuracy")
    try:
        gauges.first.wait_for(timeout=60_000)
    finally:
        shot(page, "04-results")
    gauges_seconds = time.time() - clicked
    idle(page)
    gauges = page.locator(".js-plotly-plot", has_text="unlearning accuracy").first     # one figure, four gauges
    for title in ("unlearning accuracy", "retain accuracy", "test accuracy", "MIA-Efficacy"):
        assert gauges.locator(".indicatorlayer g.trace", has_text=title).count() == 1, title
    shot(page, "04-results")

    umap = page.locator(".js-plotly-plot", has_text="unlearned")
    for _ in range(120):            # insights (UMAP) follow the metrics by a few seconds
        go(page, "Feature space")
        page.get_by_text("Feature space").first.wait_for()
        idle(page)
        if umap.count():
            break
        page.wait_for_timeout(2000)
    assert umap.count() >= 1
    assert page.get_by_text("Separation · original").count() == 1
    shot(page, "05-feature-space")
    (ARTIFACTS / "timings.txt").write_text(f"start→gauges after clicking Start: {gauges_seconds:.1f} s\n"
                                           f"whole test so far: {time.time() - start:.1f} s\n")

    for title, name in (("Weight saliency", "06-saliency"), ("Privacy", "07-privacy"),
                        ("Compare runs", "08-compare"), ("Guided tour", "09-tour")):
        go(page, title)
        page.get_by_role("heading", name=title if title != "Compare runs" else "Compare runs").first.wait_for()
        idle(page)
        page.wait_for_timeout(800)
        assert page.get_by_text("Traceback").count() == 0
        shot(page, name)
    go(page, "Per-example audit")              # the audit came with the insights; the deep one is a click away
    page.get_by_text("Attacker AUC (LiRA)").first.wait_for()
    idle(page)
    assert page.get_by_text("Traceback").count() == 0
    shot(page, "11-audit")
    page.get_by_role("button", name="Compute forgetting quality").click()
    page.get_by_text("the largest measurable ε is").first.wait_for(timeout=240_000)
    idle(page)
    assert page.get_by_text("Traceback").count() == 0
    shot(page, "12-audit-deep")
    go(page, "Guided tour")
    page.get_by_role("heading", name="Guided tour").first.wait_for()
    idle(page)
    for step in range(4):                       # the tour, to the gauges step
        page.get_by_role("button", name="Next →").click()
        idle(page)
    page.get_by_text("5. Did it forget?").wait_for()
    page.wait_for_timeout(800)
    shot(page, "10-tour-step-5")


def choose(page, label: str, option: str):
    """Pick ``option`` (a substring of its text) in the select box labelled ``label`` (Streamlit draws it as an
    ARIA combo box: an input whose accessible name is the label, and a list box of options)."""
    from playwright.sync_api import expect

    box = page.get_by_role("combobox", name=label, exact=True).first
    box.click()
    page.locator('[role="option"]', has_text=option).first.click()
    expect(box).to_have_value(re.compile(re.escape(option)))


def showing(page, method: str) -> bool:
    return page.get_by_text(f"Showing {method}").count() > 0


def test_second_method_shows_up_in_results_and_a_pick_sticks(server, page):
    """Continues the session of the test above (WSS-CL forgot Trouser): SalUn on the same set, then Results
    follows the new run by itself; picking WSS-CL again sticks through polling, page switches and the end of
    SalUn's job. Then both side by side from Compare runs."""
    go(page, "Results")
    page.get_by_text("Showing WSS-CL").first.wait_for()
    go(page, "Run")
    page.get_by_text("Hyperparameters").wait_for()
    idle(page)
    choose(page, "Method", "SalUn")
    idle(page)
    page.get_by_role("button", name="Start").click()
    page.get_by_text("SalUn · class Trouser").first.wait_for()

    go(page, "Results")
    page.get_by_text("Showing").first.wait_for()
    if showing(page, "WSS-CL"):         # SalUn still computing its metrics: the page says so under the old gauges
        assert page.get_by_text("Another run is").count() + page.get_by_text("SalUn · class Trouser").count() >= 1
        shot(page, "11-results-while-second-runs")
    page.get_by_text("Showing SalUn").first.wait_for(timeout=240_000)   # no click: it follows the finished run
    idle(page)
    assert not showing(page, "WSS-CL")
    shot(page, "12-results-second-run")

    choose(page, "Run", "WSS-CL")
    page.get_by_text("Showing WSS-CL").first.wait_for()
    go(page, "Feature space")
    page.get_by_text("Showing WSS-CL").first.wait_for()
    go(page, "Results")
    deadline = time.time() + 240        # until SalUn's job (its insights) has ended, polling all the while
    while time.time() < deadline and page.get_by_text("still being computed").count():
        page.wait_for_timeout(1000)
    idle(page)
    page.wait_for_timeout(2500)         # a couple more polling cycles
    assert showing(page, "WSS-CL") and not showing(page, "SalUn")
    shot(page, "13-results-picked-first-again")

    go(page, "Compare runs")
    page.get_by_text("Tick two or more runs").wait_for()
    for method in ("WSS-CL", "SalUn"):
        page.locator('[data-testid="stCheckbox"]', has_text=method).first.locator("label").click()
        idle(page)
    page.get_by_role("button", name="Side by side (2 ticked)").click()
    page.get_by_text("Runs to compare").first.wait_for()          # the page's own picker, not Compare's heading
    page.locator(".js-plotly-plot .indicatorlayer").nth(7).wait_for(timeout=60_000)   # 4 gauges × 2 runs at least
    idle(page)
    assert page.get_by_text("Traceback").count() == 0
    assert page.get_by_role("button", name="Comparison report (self-contained HTML)").count() == 1
    shot(page, "14-side-by-side")
