"""`python -m engine train|evaluate`: figures as JSON, and bad input refused with exit code 2."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.idx import write_idx

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def idx_root(tmp_path):
    """A tiny Fashion-MNIST in torchvision's layout: 200 training / 40 test images."""
    rng = np.random.default_rng(0)
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    labels = np.arange(200) % 10
    images = (rng.random((200, 28, 28)) * 60 + labels[:, None, None] * 19).astype(np.uint8)  # learnable
    write_idx(raw / "train-images-idx3-ubyte", images)
    write_idx(raw / "train-labels-idx1-ubyte", labels)
    write_idx(raw / "t10k-images-idx3-ubyte", images[:40])
    write_idx(raw / "t10k-labels-idx1-ubyte", labels[:40])
    return tmp_path


def test_train_then_evaluate_with_a_reference(idx_root, tmp_path):
    common = ["--dataset", "fashion-mnist", "--data-root", str(idx_root), "--device", "cpu"]
    assert main(["train", *common, "--epochs", "1", "--out", str(tmp_path / "orig"),
                 "--json", str(tmp_path / "train.json")]) == 0
    trained = json.loads((tmp_path / "train.json").read_text())
    assert 0 <= trained["test_acc"] <= 100 and trained["seconds"] > 0
    assert main(["train", *common, "--epochs", "1", "--forget-classes", "2", "--out", str(tmp_path / "re"),
                 "--json", str(tmp_path / "re-figures.json")]) == 0
    assert main(["evaluate", *common, "--checkpoint", str(tmp_path / "orig.safetensors"), "--forget-classes", "2",
                 "--reference", str(tmp_path / "re.safetensors"), "--json", str(tmp_path / "eval.json")]) == 0
    figures = json.loads((tmp_path / "eval.json").read_text())
    for key in ("UA", "RA", "TA", "MIA", "forget_test_acc", "seconds", "avg_gap"):
        assert isinstance(figures[key], float), key
    assert json.loads((tmp_path / "re.json").read_text())["metrics"]["UA"] == 100.0


def test_forget_ids_file(idx_root, tmp_path):
    common = ["--dataset", "fashion-mnist", "--data-root", str(idx_root), "--device", "cpu"]
    main(["train", *common, "--epochs", "1", "--out", str(tmp_path / "m")])
    from engine.data import load_dataset
    from engine.splits import training_indices

    ids = training_indices(load_dataset("fashion-mnist", root=idx_root))[:5].tolist()
    (tmp_path / "ids.txt").write_text(", ".join(map(str, ids)))
    assert main(["evaluate", *common, "--checkpoint", str(tmp_path / "m.safetensors"),
                 "--forget-ids", str(tmp_path / "ids.txt"), "--json", str(tmp_path / "e.json")]) == 0
    figures = json.loads((tmp_path / "e.json").read_text())
    assert figures["forget"]["sample_ids"] == ids and "avg_gap" not in figures


@pytest.mark.parametrize("args, message", [
    (["evaluate", "--checkpoint", "x.safetensors", "--forget-classes", "11"], "class index 11 out of range"),
    (["evaluate", "--checkpoint", "x.safetensors", "--forget-fraction", "1.5"], "got 1.5"),
    (["evaluate", "--checkpoint", "missing.safetensors", "--forget-classes", "1"], "does not exist"),
    (["evaluate", "--dataset", "imagenet", "--checkpoint", "x", "--forget-classes", "1"], "'imagenet'"),
    (["train", "--out", "o", "--architecture", "vgg"], "unknown architecture 'vgg'"),
])
def test_bad_input_exit_code_2_with_message(args, message, capsys):
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_evaluate_refuses_a_corrupted_checkpoint_and_leaves_it(tmp_path, capsys):
    original = ROOT / "assets/checkpoints/fashion-mini/original.safetensors"
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(original.read_bytes()[:1000])
    (tmp_path / "copy.json").write_text(original.with_suffix(".json").read_text())
    assert main(["evaluate", "--checkpoint", str(copy), "--forget-classes", "1"]) == 2
    assert "sha256" in capsys.readouterr().err
    assert copy.stat().st_size == 1000


def test_train_refuses_to_overwrite_and_to_clobber_the_sidecar(idx_root, tmp_path, capsys):
    common = ["--dataset", "fashion-mnist", "--data-root", str(idx_root), "--device", "cpu", "--epochs", "1"]
    assert main(["train", *common, "--out", str(tmp_path / "m")]) == 0
    before = (tmp_path / "m.safetensors").read_bytes()
    assert main(["train", *common, "--out", str(tmp_path / "m")]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert main(["train", *common, "--out", str(tmp_path / "n"), "--json", str(tmp_path / "n.json")]) == 2
    assert "sidecar" in capsys.readouterr().err
    assert (tmp_path / "m.safetensors").read_bytes() == before


def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "engine", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "evaluate" in done.stdout and "train" in done.stdout
