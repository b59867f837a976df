"""`python -m engine bench` end to end, in-process, on a tiny dataset file and model checkpoint (real files, so
the same command also runs on Ray: see tests/test_executor.py): table, JSON, failures, resume, merge."""
from __future__ import annotations

import json

import pytest

import engine.cli_bench as cli_bench
from engine.cli import main
from engine.cli_unlearn import parse_overrides
from engine.splits import ForgetSpec
from tests.scale_env import make_tiny_assets


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return make_tiny_assets(tmp_path_factory.mktemp("bench-assets"))


@pytest.fixture
def bench(assets, tmp_path, monkeypatch):
    npz, original = assets
    monkeypatch.chdir(tmp_path)   # runs/bench-cache (the Retrain references) lands in the test's folder
    return ["bench", "--dataset", str(npz), "--checkpoint", str(original), "--device", "cpu"]


def test_bench_writes_table_and_json(bench, tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(bench + ["--methods", "ga", "ft", "--scenarios", "class:1,2", "--seeds", "0", "1", "--paired",
                         "--set", "ga.epochs=1", "--set", "ft.epochs=1", "--out", str(out)]) == 0
    table = out.with_suffix(".md").read_text()
    assert "| class:1,2 | GA |" in table and "Avg. Gap" in table and "Device:" in table
    payload = json.loads(out.with_suffix(".json").read_text())
    runs = [r for r in payload["rows"] if r["method"] == "ga"]
    assert [(r["forget"]["classes"], r["seed"]) for r in runs] == [([1], 0), ([2], 1)]
    assert [r["method"] for r in payload["rows"]] == ["retrain", "retrain", "ga", "ga", "ft", "ft"]
    assert "bench on" in capsys.readouterr().out


def test_bench_resumes_from_its_cell_log(bench, tmp_path, capsys):
    out = tmp_path / "part"
    args = bench + ["--methods", "ga", "--scenarios", "class:1", "--seeds", "0", "1", "--set", "ga.epochs=1",
                    "--out", str(out)]
    assert main(args) == 0
    first = json.loads(out.with_suffix(".json").read_text())["rows"]
    log = tmp_path / "part.cells.jsonl"
    lines = log.read_text().splitlines()
    log.write_text(lines[0] + "\n")            # as if interrupted after the first cell: the cell log holds it,
    for written in (out.with_suffix(".json"), out.with_suffix(".md")):   # the table was never written
        written.unlink()
    capsys.readouterr()
    assert main(args) == 0
    assert "resuming: 1 of 2 cells already in" in capsys.readouterr().out
    again = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert [r["seed"] for r in again] == [r["seed"] for r in first]
    assert again[1] == first[1]                 # the cell kept from the log, byte for byte


def test_bench_reports_a_failed_cell_and_keeps_the_others(bench, tmp_path, monkeypatch, capsys):
    real = cli_bench.cell_job

    def flaky(**args):
        if args["method"] == "ft":
            raise RuntimeError("disk on fire")
        return real(**args)

    monkeypatch.setattr(cli_bench, "cell_job", flaky)
    out = tmp_path / "flaky"
    assert main(bench + ["--methods", "ga", "ft", "--scenarios", "class:1", "--seeds", "0", "--set", "ga.epochs=1",
                         "--set", "ft.epochs=1", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "FAILED cell" in err and "disk on fire" in err and '"method": "ft"' in err
    payload = json.loads(out.with_suffix(".json").read_text())
    assert [r["method"] for r in payload["rows"]] == ["retrain", "ga"] and len(payload["failed"]) == 1


def test_parse_scenario_and_overrides():
    assert cli_bench.parse_scenario("class:1,3") == [ForgetSpec(classes=(1,)), ForgetSpec(classes=(3,))]
    assert cli_bench.parse_scenario("class:0+2+6,1+8") == [ForgetSpec(classes=(0, 2, 6)), ForgetSpec(classes=(1, 8))]
    assert cli_bench.parse_scenario("random:0.1")[0].fraction == 0.1
    assert cli_bench.parse_scenario("random:0.1")[0].seed == 0
    other = cli_bench.parse_scenario("random:0.1@2")[0]
    assert (other.fraction, other.seed) == (0.1, 2)
    with pytest.raises(ValueError):
        cli_bench.parse_scenario("blob:1")
    assert parse_overrides(["lr=0.1", "guidance=hard"]) == {"lr": 0.1, "guidance": "hard"}


def test_bench_merge(bench, tmp_path):
    for part, method in (("a", "ga"), ("b", "ft")):
        assert main(bench + ["--methods", method, "--scenarios", "class:1", "--seeds", "0", "--set",
                             f"{method}.epochs=1", "--out", str(tmp_path / part)]) == 0
    assert main(["bench", "--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                 "--out", str(tmp_path / "all.v2")]) == 0
    rows = json.loads((tmp_path / "all.v2.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["retrain", "ga", "ft"]


def test_bench_rejects_a_bad_override_before_running(bench, capsys):
    assert main(bench + ["--methods", "ga", "--scenarios", "class:1", "--set", "ga.lr=-1"]) == 2
    assert "lr" in capsys.readouterr().err


def test_per_set_table_shows_the_worst_run():
    """scripts.bench_sets: one line per forget set × method, with the lowest UA and the highest forgotten-class
    test accuracy of any run beside the means (what "every run UA ≥ 99" is checked with)."""
    from scripts.bench_sets import table

    def row(method, seed, ua, forgotten):
        return {"method": method, "seed": seed, "forget": {"classes": [1, 8]}, "UA": ua, "RA": 90.0, "TA": 85.0,
                "MIA": 100.0, "forget_test_acc": forgotten, "avg_gap": 1.0, "seconds": 10.0 + seed}

    text = table([row("wsscl", 0, 98.5, 2.0), row("wsscl", 1, 100.0, 0.0),
                  {**row("retrain", 0, 100.0, 0.0), "forget_test_acc": None}],
                 names=tuple(f"c{i}" for i in range(10)), labels={"wsscl": "WSS-CL"})
    line = next(l for l in text.splitlines() if "WSS-CL" in l)
    assert line.startswith("| c1 + c8 | WSS-CL | 99.25 ± 1.06 |")
    assert "| 98.50 | 2.00 | 10.5 / 11.0 | 2 |" in line
    retrain = next(l for l in text.splitlines() if "retrain" in l)
    assert "| — |" in retrain
