"""Checkpoints: round trip, never overwritten, and every bad file refused with a clear message."""
from __future__ import annotations

import json

import pytest
import torch

from engine.checkpoints import (CheckpointError, load_checkpoint, load_state_file, read_sidecar, save_checkpoint,
                                sidecar_path)
from engine.models import ModelSpec, build_model

SPEC = ModelSpec("small-cnn", 1, 10, (0.3,), (0.35,))


def _model(seed=0):
    torch.manual_seed(seed)
    return build_model(SPEC).eval()


def _assert_same_weights(model, loaded):
    """Bit-identical tensors; outputs equal up to float reordering (loaded models are channels_last)."""
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    x = torch.rand(3, 1, 28, 28)
    assert torch.allclose(model(x), loaded(x), atol=1e-5)
    assert loaded.block1[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_round_trip_is_exact(tmp_path):
    model = _model()
    path = save_checkpoint(tmp_path / "m", model, {"kind": "original", "metrics": {"test_acc": 90.0}})
    loaded, record = load_checkpoint(path, expected=SPEC)
    _assert_same_weights(model, loaded)
    assert record["kind"] == "original" and record["model"]["architecture"] == "small-cnn"
    assert len(record["sha256"]) == 64 and "torch" in record["versions"]


def test_never_overwrites(tmp_path):
    path = save_checkpoint(tmp_path / "m", _model(0), {"kind": "original"})
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        save_checkpoint(tmp_path / "m", _model(1), {"kind": "original"})
    assert path.read_bytes() == before


def test_wrong_architecture_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "m", _model(), {})
    with pytest.raises(CheckpointError, match="expected a resnet18"):
        load_checkpoint(path, expected=ModelSpec("resnet18", 3, 10, (0.5,) * 3, (0.2,) * 3))
    with pytest.raises(CheckpointError, match="does not fit architecture 'resnet18'"):
        load_state_file(path, ModelSpec("resnet18", 3, 10, (0.5,) * 3, (0.2,) * 3))


def test_truncated_or_altered_files_are_refused(tmp_path):
    path = save_checkpoint(tmp_path / "m", _model(), {})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_state_file(path, SPEC)


def test_missing_or_broken_sidecar(tmp_path):
    path = save_checkpoint(tmp_path / "m", _model(), {})
    sidecar_path(path).write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path)
    sidecar_path(path).unlink()
    with pytest.raises(CheckpointError, match="sidecar JSON"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.safetensors")


class _RunsCode:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned > pwned.txt",))


def test_pickle_that_would_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"weight": _RunsCode()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="could not be loaded safely"):
        load_state_file(tmp_path / "evil.pt", SPEC)
    assert not (tmp_path / "pwned.txt").exists()


def test_plain_state_dict_file_loads(tmp_path):
    model = _model(3)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    loaded = load_state_file(tmp_path / "weights.pt", SPEC)
    _assert_same_weights(model, loaded)


def test_too_large_upload_is_refused(tmp_path, monkeypatch):
    import engine.checkpoints as checkpoints

    torch.save(_model().state_dict(), tmp_path / "weights.pt")
    monkeypatch.setattr(checkpoints, "MAX_UPLOAD_BYTES", 1000)
    with pytest.raises(CheckpointError, match="the limit is"):
        load_state_file(tmp_path / "weights.pt", SPEC)


def test_shipped_checkpoints_verify_and_reach_the_accuracy_bar():
    """The embedded original model loads (hash checked) and is ≥ 87 % accurate on fashion-mini's test set."""
    from engine.data import load_dataset
    from engine.metrics import accuracy
    from engine.references import CHECKPOINT_DIR, load_original
    from engine.training import predict

    data = load_dataset("fashion-mini")
    model, record = load_original(data)
    test_acc = accuracy(predict(model, data.test_images, device=torch.device("cpu")).predictions,
                        data.test_labels.numpy())
    assert test_acc >= 87.0
    assert record["metrics"]["test_acc"] == pytest.approx(test_acc, abs=0.1)
    references = sorted((CHECKPOINT_DIR / "fashion-mini").glob("retrain-class-*.safetensors"))
    assert len(references) == 10
    for path in references:
        sidecar = read_sidecar(path)
        assert sidecar["kind"] == "retrain" and sidecar["forget"]["classes"] == [int(path.stem.split("-")[-1])]
        assert sidecar["metrics"]["UA"] == 100.0  # a model never trained on a class cannot predict it
    json.dumps(record)
