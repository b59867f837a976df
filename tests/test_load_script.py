"""The browser load script's plain parts (scenarios, record checks, figures, arguments) in seconds; the script
itself, 2 sessions in fast mode in a real browser, only with UNLEARNING_LAB_LOAD_BROWSER=1 (≈ 2-5 min here)."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts import load_plan
from scripts.load_plan import Bars, Choice

REPO = Path(__file__).resolve().parent.parent


def test_classroom_sixteen_is_twelve_suggested_and_four_own_choices():
    choices = load_plan.plan("classroom", 16, "Trouser")
    suggested = [c for c in choices if c.suggested]
    own = [c for c in choices if not c.suggested]
    assert len(suggested) == 12 and len({c.key() for c in suggested}) == 1
    assert sorted(c.kind for c in own) == ["hyperparameter", "other-class", "other-class", "seed"]
    assert all(c.class_name != "Trouser" for c in own if c.kind == "other-class")
    assert len({c.key() for c in own} | {suggested[0].key()}) == 5          # every own choice is its own run
    assert not choices[0].suggested or not choices[-1].suggested or own      # interleaved, not all at the end


def test_hardening_gives_each_session_its_own_class_and_refuses_bad_sizes():
    assert [c.class_name for c in load_plan.plan("hardening", 3)] == ["T-shirt/top", "Trouser", "Pullover"]
    for args in (("hardening", 0), ("hardening", 10), ("lecture", 4)):
        with pytest.raises(ValueError):
            load_plan.plan(*args)
    with pytest.raises(ValueError, match="not one of"):
        load_plan.plan("classroom", 4, "Hat")


def test_percentile_is_nearest_rank():
    assert load_plan.percentile([], 95) is None
    assert load_plan.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert load_plan.percentile([float(v) for v in range(1, 101)], 95) == 95.0


def write_run(root: Path, name: str, classes, seed=0, config=None, ua=50.0, owner="a", saved=0.0, seconds=1.0):
    folder = root / name
    folder.mkdir(parents=True)
    record = {"method": "wsscl", "label": "WSS-CL", "spec": {"classes": classes}, "seed": seed,
              "config": config or {"sparsity": 0.5}, "status": "finished", "owner": owner, "seconds": seconds,
              "metrics": {"UA": ua, "RA": 90.0, "TA": 85.0, "MIA": 20.0}, "original_metrics": {"UA": 1.0}}
    (folder / "run.json").write_text(json.dumps(record))
    (folder / "model.safetensors").write_bytes(b"x")
    os.utime(folder / "model.safetensors", (saved, saved))


def rows_for(choices):
    return [{"session": k, "choice": c.text(), "errors": [], "start_to_results_s": 10.0 + k, "saw_queue": k > 0,
             "own_choice_shown": True, "other_choice_shown": []} for k, c in enumerate(choices)]


def test_identical_choices_must_have_identical_metrics_and_runs_must_not_overlap(tmp_path):
    choices = [Choice("Trouser", suggested=True), Choice("Trouser", suggested=True)]
    write_run(tmp_path, "a", [1], ua=50.0, owner="a", saved=1000.0)
    write_run(tmp_path, "b", [1], ua=50.0, owner="b", saved=1010.0)
    write_run(tmp_path, "_references/x", [1], ua=0.0)                     # not a session's run: ignored
    records = load_plan.read_records(tmp_path)
    checks, bars, figures = load_plan.evaluate(choices, rows_for(choices), records, [0.5, 1.5], shared=False,
                                               bars=Bars(all_results_s=180, shared_lag_s=10))
    assert all(checks.values()), checks
    assert bars == {"all_results_s": True, "shared_lag_s": True, "page_response_s": True}
    assert figures["shared_lag_s"] == 1.0 and figures["page_response_max_s"] == 1.5

    write_run(tmp_path, "c", [1], ua=51.0, owner="c", saved=1010.5, seconds=5.0)   # differs, and overlaps b
    checks, _, _ = load_plan.evaluate(choices + [Choice("Trouser", suggested=True)],
                                      rows_for(choices * 2)[:3], load_plan.read_records(tmp_path), [], shared=False,
                                      bars=Bars())
    assert not checks["identical_choices_identical_metrics"] and not checks["never_overlapped"]


def test_a_session_that_saw_an_error_or_another_sessions_run_fails(tmp_path):
    choices = [Choice("Trouser"), Choice("Dress")]
    write_run(tmp_path, "a", [1], owner="a", saved=1000.0)
    write_run(tmp_path, "b", [3], owner="b", saved=1010.0)
    rows = rows_for(choices)
    rows[0]["errors"] = ["Traceback: KeyError"]
    rows[1]["other_choice_shown"] = ["Trouser"]
    checks, _, _ = load_plan.evaluate(choices, rows, load_plan.read_records(tmp_path), [], shared=False, bars=Bars())
    assert not checks["no_exception_or_error_box"] and not checks["isolated"]
    assert checks["one_record_group_per_choice"] and checks["distinct_owners"]


def test_shared_mode_accepts_one_record_for_identical_choices(tmp_path):
    choices = [Choice("Trouser", suggested=True)] * 3
    write_run(tmp_path, "a", [1], owner="a", saved=1000.0)
    records = load_plan.read_records(tmp_path)
    assert load_plan.evaluate(choices, rows_for(choices), records, [], shared=True, bars=Bars())[0][
        "one_record_group_per_choice"]
    assert not load_plan.evaluate(choices, rows_for(choices), records, [], shared=False, bars=Bars())[0][
        "one_record_group_per_choice"]


def test_bad_arguments_are_refused_before_anything_starts():
    for args in (["--sessions", "0"], ["--sessions", "12"], ["--probe-every", "0"], ["--fast", "--real"]):
        result = subprocess.run([sys.executable, "-m", "scripts.load_test", *args], cwd=REPO, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 2 and "error:" in result.stderr and "Traceback" not in result.stderr, args


@pytest.mark.skipif(not os.environ.get("UNLEARNING_LAB_LOAD_BROWSER") or not Path("/usr/bin/chromium").exists(),
                    reason="the real-browser load run: set UNLEARNING_LAB_LOAD_BROWSER=1 (needs /usr/bin/chromium)")
@pytest.mark.parametrize("scenario", ["hardening", "classroom"])
def test_two_sessions_in_a_real_browser(tmp_path, scenario):
    # the classroom's two sessions ask for the same run: the second is served or joins it (a shared result)
    shared = ["--shared-text", "shared"] if scenario == "classroom" else []
    result = subprocess.run([sys.executable, "-m", "scripts.load_test", "--sessions", "2", "--fast", "--scenario",
                             scenario, *shared, "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                            timeout=1500)
    summary = json.loads((tmp_path / "load.json").read_text())
    assert result.returncode == 0, (summary["checks"], result.stdout[-3000:], result.stderr[-3000:])
    assert all(r["start_to_results_s"] is not None for r in summary["per_session"])
    assert summary["figures"]["page_probes"] > 0 and summary["server"]["rss_peak_mb"] > 0
    assert summary["figures"]["server_page_runs"] > 0                   # the server timed its script runs
    assert summary["figures"]["server_start_to_results_s"]              # and saw the Start and the results link


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_page_cost_times_a_page_switch_on_both_sides(tmp_path):
    # one session in a real browser, fast mode: Choose <-> Results once; the sizing figures are all measured
    result = subprocess.run([sys.executable, "-m", "scripts.page_cost", "--fast", "--trips", "1", "--out",
                             str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    summary = json.loads((tmp_path / "page_cost.json").read_text())
    assert summary["sessions"] == 1 and summary["mode"] == "fast" and set(summary["pages"]) == {"choose", "results"}
    for page in summary["pages"].values():
        assert page["trips"] == 1 and 0 < page["heading_s"] <= page["settled_s"] + 0.5
        assert page["browser_cpu_s"] > 0 and page["server_cpu_s"] > 0 and page["server_script_s"] > 0
    assert (tmp_path / "results.png").stat().st_size > 10_000
    assert "| results |" in result.stdout


def test_the_table_names_every_session_and_every_check(tmp_path):
    choices = load_plan.plan("classroom", 4, "Trouser")
    rows = rows_for(choices)
    checks, bars, figures = load_plan.evaluate(choices, rows, [], [1.0], shared=False, bars=Bars())
    server = {"rss_healthy_mb": 70.0, "rss_after_preflight_mb": 900.0, "rss_peak_mb": 1500.0,
              "rss_per_session_mb": 150.0, "cpu_load_s": 40.0, "cpu_per_session_s": 10.0}
    text = load_plan.markdown({"per_session": rows, "figures": figures, "server": server, "sessions": 4,
                               "scenario": "classroom", "mode": "fast", "client": {"cpu_s": 5.0, "rss_peak_mb": 800.0},
                               "machine": "test", "checks": checks, "bars": bars})
    assert all(row["choice"] in text for row in rows) and "records_finished ✗" in text and "1500.0 MB" in text


def test_the_client_is_made_to_yield_in_every_thread_and_stays_so():
    """`--client-nice`: a client process's every thread gets the niceness, and a thread that set its own priority
    back (as Chromium's renderers do) is reniced again on the next call."""
    from scripts.load_server import yield_cpu

    child = subprocess.Popen([sys.executable, "-c", "import threading, time\n"
                              "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
                              "time.sleep(30)"], start_new_session=True)   # its own autogroup, not pytest's
    try:
        deadline = time.time() + 10
        while len(os.listdir(f"/proc/{child.pid}/task")) < 2 and time.time() < deadline:
            time.sleep(0.05)
        tids = [int(t) for t in os.listdir(f"/proc/{child.pid}/task")]
        assert len(tids) >= 2
        yield_cpu(child.pid, 7)
        assert {os.getpriority(os.PRIO_PROCESS, t) for t in tids} == {7}
        try:
            os.setpriority(os.PRIO_PROCESS, tids[-1], 3)        # the process lowers one thread's niceness again
        except PermissionError:
            pytest.skip("lowering a niceness needs CAP_SYS_NICE here")
        yield_cpu(child.pid, 7)
        assert {os.getpriority(os.PRIO_PROCESS, t) for t in tids} == {7}
    finally:
        child.kill()
        child.wait()
    yield_cpu(child.pid, 7)                                     # gone: skipped, no error


def test_the_observer_counts_only_its_probes_during_the_load(tmp_path):
    """`--observer`: probes before the first Start click and after the last results are left out."""
    from scripts.load_test import observer_figures

    path = tmp_path / "observer.json"
    path.write_text(json.dumps({"probes": [[1.0, 9.0], [5.0, 0.4], [6.0, 1.5], [10.0, 7.0]], "timeouts": 1}))
    figures = observer_figures(path, 2.0, 9.0)
    assert figures == {"observer_page_response_max_s": 1.5, "observer_page_response_p95_s": 1.5,
                       "observer_page_probes": 2, "observer_timeouts": 1}
    assert observer_figures(tmp_path / "missing.json", 2.0, 9.0)["observer_page_probes"] == 0


def test_the_server_side_figures_come_from_the_apps_trace():
    """Script runs inside the load window are timed; the biggest group of sessions offered one run gives the
    shared lag, counted from when the run existed and the session had asked."""
    def run(session, page, t0, t1, *marks):
        return {"session": session, "page": page, "t0": t0, "t1": t1, "marks": list(marks)}

    start, link = {"name": "start", "how": "shared"}, {"name": "results_link", "run": "tour"}
    trace = [run("a", "Run", 5.0, 9.0),                                         # before the load: not counted
             run("a", "Run", 10.0, 10.5, {**start, "t": 10.2}, {**link, "t": 10.4}),   # served at once
             run("b", "Run", 12.0, 13.0, {**start, "t": 12.1}),                 # asked; offered in a later run
             run("b", "Run", 20.0, 21.5, {**link, "t": 21.0}),
             run("c", "Run", 11.0, 11.2, {**start, "t": 11.1}),
             run("c", "Run", 30.0, 30.6, {"name": "results_link", "run": "own"}),
             run("c", "Results", 31.0, 33.0),
             run("e", "Run", 14.0, 14.3, {**start, "t": 14.1}),                 # Start opened Results itself:
             run("e", "Results", 14.3, 15.0, {"name": "results", "run": "tour", "t": 14.9}),   # offered at 15.0
             run("d", "Choose", 40.0, 41.0)]                                    # after the load: not counted
    figures = load_plan.server_figures(trace, 10.0, 35.0)
    assert figures["server_page_runs"] == 8
    assert figures["server_page_run_max_s"] == 2.0 and figures["server_page_run_max_by_page_s"] == {"Results": 2.0,
                                                                                                   "Run": 1.5}
    assert figures["server_shared_sessions"] == 3
    assert figures["server_shared_lag_max_s"] == 9.5            # b: offered at 21.5, asked at 12.0 (after a's 10.5)
    assert figures["server_shared_last_minus_first_s"] == 11.0
    assert figures["server_start_to_results_s"] == [0.5, 1.0, 9.5, 19.6]
    assert load_plan.server_figures(trace, None, None) == {"server_page_runs": 0}


def test_the_trace_writes_one_line_per_script_run_even_when_streamlit_stops_it(tmp_path, monkeypatch):
    from app import trace

    target = tmp_path / "trace.jsonl"
    trace.mark("outside", x=1)                                  # no traced run: nothing, no error
    with trace.script_run("s", "Run"):                          # off: nothing written
        trace.mark("start")
    assert not target.exists()
    monkeypatch.setenv("UNLEARNING_LAB_TRACE", str(target))
    with trace.script_run("s", "Run"):
        trace.mark("start", how="new")
    with pytest.raises(KeyboardInterrupt):                      # e.g. Streamlit's RerunException: re-raised
        with trace.script_run("s", "Results"):
            raise KeyboardInterrupt
    target.write_text(target.read_text() + '{"torn')            # a line cut by a stopped server is skipped
    rows = trace.read(target)
    assert [(r["page"], r["ended_by"], [m["name"] for m in r["marks"]]) for r in rows] == \
        [("Run", None, ["start"]), ("Results", "KeyboardInterrupt", [])]
    assert all(r["t1"] >= r["t0"] for r in rows) and rows[0]["marks"][0]["how"] == "new"
    assert trace.read(tmp_path / "missing.jsonl") == []
