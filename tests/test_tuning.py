"""The Optuna tuner on the tiny dataset: a study runs, resumes from its sqlite storage, and never reads test data."""
from __future__ import annotations

import json

import pytest
import torch

from engine.cli import main
from engine.executor import InlineExecutor, dataset_ref, open_dataset
from engine.tuning import WithheldDataError, choose, record_choice, run_study, trials_table, withhold_test
from tests.scale_env import make_tiny_assets


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return make_tiny_assets(tmp_path_factory.mktemp("tuning-assets"))


def test_withheld_test_set_raises_on_any_use(assets):
    dataset = withhold_test(open_dataset(dataset_ref(str(assets[0]))))
    for touch in (lambda: dataset.test_images[0], lambda: dataset.test_labels.numpy(), lambda: len(dataset.test_images),
                  lambda: dataset.test_images.shape, lambda: torch.as_tensor(dataset.test_labels) + 1):
        with pytest.raises(WithheldDataError):
            touch()
    assert dataset.train_images.shape[0] == 200   # the training pool is untouched


def test_study_runs_resumes_and_never_touches_test(assets, tmp_path, monkeypatch):
    import engine.tuning as tuning

    npz, original = assets
    reads = []
    real = tuning.withhold_test
    monkeypatch.setattr(tuning, "withhold_test", lambda d: reads.append(d.name) or real(d))
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    options = dict(executor=InlineExecutor(), storage=storage, dataset=str(npz), checkpoint=str(original),
                   device="cpu")
    first = [t.params for t in run_study("ga", "class", 3, **options).trials]
    assert len(first) == 3 and reads                    # every trial went through the withheld dataset
    again = run_study("ga", "class", 5, **options)      # resumes: 3 kept, 2 more
    assert len(again.trials) == 5 and [t.params for t in again.trials[:3]] == first
    best = choose(again, "class")
    assert best is not None and "| trial | state | lr | epochs |" in trials_table(again, "ga", "class")
    path = record_choice("ga", "class", best.params, tmp_path / "chosen.json")
    assert json.loads(path.read_text())["ga"]["class"] == best.params


def test_tune_command(assets, tmp_path, capsys):
    npz, original = assets
    out = tmp_path / "best.json"
    assert main(["tune", "--method", "ft", "--setting", "random", "--trials", "2", "--dataset", str(npz),
                 "--checkpoint", str(original), "--device", "cpu", "--storage", f"sqlite:///{tmp_path / 't.db'}",
                 "--report", str(tmp_path / "t.md"), "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["trials"] == 2 and set(payload["params"]) == {"lr", "epochs"}
    assert "random 10%" in (tmp_path / "t.md").read_text()
    assert main(["tune", "--method", "ft", "--setting", "nope", "--trials", "1"]) == 2   # one error: line
