"""`python -m engine unlearn` end to end on the tiny fixture (data and model patched in)."""
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
