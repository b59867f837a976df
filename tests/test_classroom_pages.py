"""The classroom's pages under AppTest: the Choose page suggests a class to a first-time student, and a shared
result (here the guided tour's prepared run) opens on Results marked as shared, owner unnamed, with a button for
a fresh run of one's own."""
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
