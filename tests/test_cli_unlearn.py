"""`python -m engine unlearn` and `bench` end to end on the tiny fixture (data and model patched in)."""
from __future__ import annotations

import json

import pytest

import engine.cli_unlearn as cli_unlearn
from engine.cli import main
from engine.splits import ForgetSpec


@pytest.fixture
def patched(tiny, monkeypatch):
    dataset, split, model = tiny
    monkeypatch.setattr(cli_unlearn, "load_data", lambda args: dataset)
    monkeypatch.setattr(cli_unlearn, "load_model", lambda data, checkpoint, device: model)
    import engine.references

    monkeypatch.setattr(engine.references, "load_original", lambda data, device=None: (model, {}))
    reference = {"UA": 100.0, "RA": 60.0, "TA": 55.0, "MIA": 100.0}
    monkeypatch.setattr(cli_unlearn, "reference_for", lambda *a, **k: (reference, 12.0, "test"))
    return dataset, model


def test_unlearn_writes_json(patched, tmp_path):
    out = tmp_path / "out.json"
    code = main(["unlearn", "--forget-classes", "1", "--method", "ft", "--seed", "0", "--set", "epochs=1",
                 "--device", "cpu", "--json", str(out), "--save-run", str(tmp_path / "runs")])
    assert code == 0
    payload = json.loads(out.read_text())
    assert payload["method"] == "ft" and payload["config"]["epochs"] == 1 and payload["forget"]["classes"] == [1]
    assert {"UA", "RA", "TA", "MIA", "seconds", "device"} <= set(payload)
    from engine.runs import list_runs

    assert [r["status"] for r in list_runs(tmp_path / "runs")] == ["finished"]


def test_unlearn_forget_ids_and_fraction(patched, tmp_path):
    dataset, _ = patched
    from engine.splits import training_indices

    ids = tmp_path / "ids.txt"
    ids.write_text(" ".join(map(str, training_indices(dataset)[:10])))
    assert main(["unlearn", "--forget-ids", str(ids), "--method", "ga", "--set", "epochs=1", "--device", "cpu",
                 "--json", str(tmp_path / "a.json")]) == 0
    assert len(json.loads((tmp_path / "a.json").read_text())["forget"]["sample_ids"]) == 10
    assert main(["unlearn", "--forget-fraction", "0.2", "--method", "ga", "--set", "epochs=1", "--device", "cpu",
                 "--json", str(tmp_path / "b.json")]) == 0


def test_unlearn_rejects_a_bad_option(patched, capsys):
    assert main(["unlearn", "--forget-classes", "1", "--method", "ft", "--set", "lr=-1", "--device", "cpu"]) == 2
    assert "lr" in capsys.readouterr().err


def test_bench_writes_table_and_json(patched, tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", "--methods", "ga", "ft", "--scenarios", "class:1,2", "--seeds", "0", "1", "--paired",
                 "--set", "ga.epochs=1", "--set", "ft.epochs=1", "--device", "cpu", "--out", str(out)]) == 0
    table = out.with_suffix(".md").read_text()
    assert "| class:1,2 | GA |" in table and "Avg. Gap" in table and "Device:" in table
    payload = json.loads(out.with_suffix(".json").read_text())
    runs = [r for r in payload["rows"] if r["method"] == "ga"]
    assert [(r["forget"]["classes"], r["seed"]) for r in runs] == [([1], 0), ([2], 1)]
    assert "bench on" in capsys.readouterr().out


def test_parse_scenario_and_overrides():
    assert cli_unlearn.parse_scenario("class:1,3") == [ForgetSpec(classes=(1,)), ForgetSpec(classes=(3,))]
    assert cli_unlearn.parse_scenario("random:0.1")[0].fraction == 0.1
    assert cli_unlearn.parse_scenario("random:0.1")[0].seed == 0
    other = cli_unlearn.parse_scenario("random:0.1@2")[0]
    assert (other.fraction, other.seed) == (0.1, 2)
    with pytest.raises(ValueError):
        cli_unlearn.parse_scenario("blob:1")
    assert cli_unlearn.parse_overrides(["lr=0.1", "guidance=hard"]) == {"lr": 0.1, "guidance": "hard"}


def test_bench_merge(patched, tmp_path):
    for part, method in (("a", "ga"), ("b", "ft")):
        assert main(["bench", "--methods", method, "--scenarios", "class:1", "--seeds", "0", "--set",
                     f"{method}.epochs=1", "--device", "cpu", "--out", str(tmp_path / part)]) == 0
    assert main(["bench", "--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"),
                 "--out", str(tmp_path / "all.v2")]) == 0
    rows = json.loads((tmp_path / "all.v2.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["retrain", "ga", "ft"]
