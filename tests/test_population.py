"""Populations in-process on the tiny dataset: members, their "in" sets, resume, refusal of a foreign OUT."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.cli import main
from engine.checkpoints import read_sidecar
from tests.scale_env import make_tiny_assets


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return make_tiny_assets(tmp_path_factory.mktemp("population-assets"))[0]


def test_shadow_population_halves_and_resume(npz, tmp_path, capsys):
    out = tmp_path / "shadow"
    args = ["population", "--kind", "shadow", "--dataset", str(npz), "--count", "3", "--epochs", "1",
            "--device", "cpu", "--out", str(out)]
    assert main(args) == 0
    manifest = json.loads((out / "population.json").read_text())
    assert [m["seed"] for m in manifest["members"]] == [0, 1, 2]
    halves = [np.load(out / m["in_ids"]) for m in manifest["members"]]
    pool = 200 - 40   # the training pool minus the validation hold-out
    assert all(len(h) == pool // 2 and np.all(np.diff(h) > 0) for h in halves)
    assert not np.array_equal(halves[0], halves[1])           # each member its own random half
    sidecar = read_sidecar(out / "member-001.safetensors")
    assert sidecar["kind"] == "population-shadow" and sidecar["in_ids"] == "member-001.in.npy"
    before = (out / "member-000.safetensors").stat().st_mtime_ns
    assert main(args[:6] + ["5"] + args[7:]) == 0              # --count 5: trains members 3 and 4 only
    assert (out / "member-000.safetensors").stat().st_mtime_ns == before
    assert len(json.loads((out / "population.json").read_text())["members"]) == 5


def test_retrain_population_trains_on_the_retain_set(npz, tmp_path):
    out = tmp_path / "retrain"
    assert main(["population", "--kind", "retrain", "--dataset", str(npz), "--forget-classes", "1", "--count", "2",
                 "--epochs", "1", "--device", "cpu", "--out", str(out)]) == 0
    ids = np.load(out / "member-000.in.npy")
    from engine.executor import dataset_ref, open_dataset

    labels = open_dataset(dataset_ref(str(npz))).train_labels.numpy()
    assert len(ids) and not np.any(labels[ids] == 1)
    assert "UA" in read_sidecar(out / "member-000.safetensors")["metrics"]
    # another population into the same folder is refused, never overwritten
    assert main(["population", "--kind", "shadow", "--dataset", str(npz), "--count", "1", "--epochs", "1",
                 "--device", "cpu", "--out", str(out)]) == 2


def test_population_bad_input(npz, tmp_path, capsys):
    assert main(["population", "--kind", "retrain", "--dataset", str(npz), "--count", "1",
                 "--out", str(tmp_path / "x")]) == 2
    assert "needs a forget set" in capsys.readouterr().err
    assert main(["population", "--kind", "shadow", "--dataset", str(npz), "--count", "0",
                 "--out", str(tmp_path / "x")]) == 2
