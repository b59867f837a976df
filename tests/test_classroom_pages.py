"""The classroom's pages under AppTest: the Choose page suggests a class to a first-time student, and a shared
result (here the guided tour's prepared run) opens on Results marked as shared, owner unnamed, with a button for
a fresh run of one's own; Start on a run computed already opens its results at once, queueing nothing."""
import os
from pathlib import Path

from lab_env import fast_lab

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
APP = Path(__file__).resolve().parent.parent / "app"


def test_suggestion_and_a_shared_result_on_results(tmp_path):
    from streamlit.testing.v1 import AppTest

    with fast_lab(tmp_path):
        at = AppTest.from_file(str(APP / "streamlit_app.py"), default_timeout=180)
        at.run()
        at.switch_page("views/forget.py").run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("Suggested: Trouser" in i.value for i in at.info)

        tour = str((APP / "tour" / "run").resolve())
        at.session_state["shared_runs"] = [tour]
        at.session_state["run_id"] = tour
        at.switch_page("views/results.py").run()
        assert not at.exception, [e.value for e in at.exception]
        shown = " ".join([i.value for i in at.info] + [m.value for m in at.markdown])
        assert "Shared result" in shown and "owner" not in shown.lower()
        assert any(b.label == "Run it again myself" for b in at.button)
        assert "class Trouser" in shown and "seed 0" in shown
        assert "· shared" in at.selectbox(key="run-pick-results").format_func(tour)


def test_start_on_a_run_computed_already_opens_its_results_at_once(tmp_path):
    from streamlit.testing.v1 import AppTest

    with fast_lab(tmp_path, fast=False):      # the real defaults: WSS-CL on Trouser, seed 0 is the tour's run
        from app.jobs import manager

        at = AppTest.from_file(str(APP / "streamlit_app.py"), default_timeout=180)
        at.run()
        at.switch_page("views/forget.py").run()
        at.checkbox(key="class-1").check().run()
        at.switch_page("views/run.py").run()
        assert not at.exception, [e.value for e in at.exception]
        queued_before = len(manager().jobs())
        at.button(key="start").click().run()
        assert not at.exception, [e.value for e in at.exception]
        assert [t.value for t in at.title][:1] == ["Results"]          # Start went straight to the results
        shown = " ".join([i.value for i in at.info] + [m.value for m in at.markdown])
        assert "Shared result" in shown and "class Trouser" in shown and "seed 0" in shown
        assert len(manager().jobs()) == queued_before                  # served: no job queued
        tour = str((APP / "tour" / "run").resolve())
        assert at.session_state["run_id"] == tour and tour in at.session_state["shared_runs"]
