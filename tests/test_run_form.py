"""The Run form and the storage pages under AppTest: Reset really resets (new widgets, which the browser shows
with their defaults), a number outside a field's bounds is refused visibly (never replaced silently), a session's
extra Start past its share of the queue is refused, an unusable run folder or size cap gives one clear message on
the Run, Results and Compare pages, and a queued run of a dead process is listed "interrupted (not started)"."""
import os
import threading
import uuid

import pytest

import engine
from lab_env import REPO, fast_lab

APP = REPO / "app/streamlit_app.py"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with fast_lab(tmp_path_factory.mktemp("runs")) as settings:
        yield settings


@pytest.fixture
def busy_device():
    """The shared worker kept busy by another session, so this session's Starts wait in the queue."""
    from app.jobs import manager

    gate = threading.Event()
    blocker = manager().submit("someone-else", "unlearn", "blocker", {}, lambda job, report, stop: gate.wait(120) and None)
    yield
    gate.set()
    for job in manager().jobs():
        if job["status"] == "queued":
            manager().cancel(job["id"])
    manager().wait(blocker.id, 30)


def run_page(page="run", classes=(3,)):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=180)
    at.run()
    at.session_state["forget_mode"] = "classes"
    at.session_state["forget_classes"] = list(classes)
    at.switch_page(f"views/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def field(at, name, method="wsscl"):
    return next(n for n in at.number_input if n.key.startswith(f"cfg-{method}-") and n.key.endswith(f"-{name}"))


def my_jobs(at):
    from app.jobs import manager

    return [j for j in manager().jobs(at.session_state["session_id"])]


def test_reset_to_defaults_gives_fresh_widgets_and_the_run_uses_the_defaults(lab, busy_device):
    at = run_page()
    epochs = field(at, "epochs")
    default, typed = epochs.value, epochs.value + 2
    epochs.set_value(typed).run()
    assert field(at, "epochs").value == typed
    before = field(at, "epochs").id
    at.button(key="reset-wsscl").click().run()
    after = field(at, "epochs")
    assert after.value == default
    # A browser keeps showing (and sending) what was typed into a widget as long as its id stays the same;
    # act like one: a widget still under the old id gets the typed value back.
    assert after.id != before, "Reset kept the same widget, so the browser would keep the typed value"
    for number in at.number_input:
        if number.id == before:
            number.set_value(typed)
    at.button(key="start").click().run()
    assert not at.exception
    (job,) = my_jobs(at)
    assert job["params"].config.epochs == default


def test_a_value_above_the_maximum_is_refused_visibly_and_nothing_starts(lab, busy_device):
    at = run_page()
    bounds = {f.name: f for f in engine.config_fields(engine.METHODS["wsscl"].config_class)}
    epochs = field(at, "epochs")
    too_many = int(bounds["epochs"].max) + 1
    assert f"Allowed: {bounds['epochs'].min:g} to {bounds['epochs'].max:g}" in epochs.help
    epochs.set_value(too_many).run()
    assert field(at, "epochs").value == too_many                  # kept as typed, not replaced
    assert any(f"epochs {too_many} is above its maximum" in e.value for e in at.error), [e.value for e in at.error]
    at.button(key="start").click().run()
    assert any(e.value.startswith("Not started:") and "above its maximum" in e.value for e in at.error)
    assert my_jobs(at) == []


def test_a_session_cannot_queue_more_than_its_share(lab, busy_device):
    from app.jobs import JobManager

    at = run_page()
    for seed in range(JobManager.MAX_WAITING + 1):       # distinct seeds: an identical Start joins the run it matches
        next(n for n in at.number_input if n.key.startswith("seed-")).set_value(seed).run()
        at.button(key="start").click().run()
        assert not at.exception
    assert len(my_jobs(at)) == JobManager.MAX_WAITING
    assert any(f"at most {JobManager.MAX_WAITING} per session" in e.value for e in at.error), [e.value for e in at.error]
    runs = [r for r in engine.list_runs(os.environ["UNLEARNING_LAB_RUNS"]) if r["owner"] == at.session_state["session_id"]]
    assert sorted(r["status"] for r in runs) == ["queued"] * JobManager.MAX_WAITING    # recorded when queued


@pytest.mark.parametrize("setting", ["/proc/x/runs", "file/runs", "max_mb"])
def test_an_unusable_run_folder_gives_one_clear_message_on_each_page(lab, tmp_path, monkeypatch, setting):
    if setting == "max_mb":
        monkeypatch.setenv("UNLEARNING_LAB_RUNS_MAX_MB", "abc")
        expected = "UNLEARNING_LAB_RUNS_MAX_MB"
    else:
        (tmp_path / "file").write_text("not a folder")
        monkeypatch.setenv("UNLEARNING_LAB_RUNS", str(tmp_path / setting) if setting.startswith("file")
                           else setting)
        expected = "The run folder cannot be used"
    for page in ("run", "results", "compare"):
        at = run_page(page)
        errors = [e.value for e in at.error]
        assert len(errors) == 1 and expected in errors[0], (page, errors)
        assert str(tmp_path) not in errors[0]                     # no server paths on the page


def test_compare_lists_a_dead_processs_queued_run_as_interrupted_not_started(lab):
    run_dir = engine.new_run_dir(os.environ["UNLEARNING_LAB_RUNS"], "ga", 0, "fashion-mini")
    record = engine.RunRecord(method="ga", label="GA", dataset="fashion-mini", forget=engine.ForgetSpec(classes=(3,)),
                              spec_text="class Dress").queue()
    record.pid, record.process = os.getpid(), uuid.uuid4().hex     # this pid, another (dead) process's token
    engine.write_record(run_dir, record)
    at = run_page("compare")
    at.segmented_control(key="compare-scope").set_value("all").run()
    table = at.dataframe[0].value
    assert "interrupted (not started)" in list(table["status"]), table


def test_results_names_the_sessions_other_runs_while_one_is_still_going(lab, busy_device):
    """Was a traceback (the job's params are a RunRequest, not a dict): seen by the load test on Results."""
    at = run_page()
    at.button(key="start").click().run()                       # waits behind the other session's job
    run_dir = engine.new_run_dir(os.environ["UNLEARNING_LAB_RUNS"], "ga", 0, "fashion-mini")
    record = engine.RunRecord(method="ga", label="GA", dataset="fashion-mini", forget=engine.ForgetSpec(classes=(3,)),
                              spec_text="class Dress", owner=at.session_state["session_id"], metrics={
                                  "UA": 90.0, "RA": 90.0, "TA": 85.0, "MIA": 90.0}).start()
    engine.write_record(run_dir, record.finish())
    at.switch_page("views/results.py")
    at.run()
    # the record here holds only the four headline metrics, so the charts below the header may not draw; the
    # header's naming of the other runs is what is checked
    assert not [e.value for e in at.exception if "RunRequest" in e.value or "'get'" in e.value]
    assert any("Another run is waiting in the queue" in i.value for i in at.info), [i.value for i in at.info]
