"""The one training loop: learns, is deterministic, reports progress, honours cancel, stops on NaN."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.data import load_dataset
from engine.metrics import accuracy
from engine.models import ModelSpec, build_model, spec_for
from engine.progress import RunCancelled, RunDiverged
from engine.references import train_from_scratch
from engine.training import TrainRecipe, predict, resolve_device

CPU = torch.device("cpu")
FAST = TrainRecipe(epochs=2, batch_size=64, lr=0.05)


@pytest.fixture(scope="module")
def data():
    return load_dataset("fashion-mini")


@pytest.fixture(scope="module")
def subset(data):
    return np.arange(0, 12000, 20)  # 600 images


def test_training_learns_and_is_deterministic(data, subset):
    events = []
    first = train_from_scratch(data, subset, recipe=FAST, device=CPU, seed=3, on_progress=events.append)
    second = train_from_scratch(data, subset, recipe=FAST, device=CPU, seed=3)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    assert events and events[-1].step == events[-1].total == 2 * 10 and events[0].stage == "train"
    assert events[-1].metrics["loss"] < events[0].metrics["loss"]
    test_acc = accuracy(predict(first, data.test_images, device=CPU).predictions, data.test_labels.numpy())
    assert test_acc > 40.0  # 2 epochs on 600 images: far above chance (10 %)
    other = train_from_scratch(data, subset, recipe=FAST, device=CPU, seed=4)
    assert not torch.equal(first.head.weight, other.head.weight)


def test_cancel_stops_within_a_batch(data, subset):
    seen = []
    with pytest.raises(RunCancelled):
        train_from_scratch(data, subset, recipe=FAST, device=CPU, on_progress=seen.append,
                           should_stop=lambda: len(seen) >= 3)
    assert len(seen) == 3


def test_diverging_loss_stops_the_run(data, subset):
    from engine.training import place, train_model

    model = place(build_model(spec_for(data)), CPU)
    with pytest.raises(RunDiverged, match="nan"):
        train_model(model, data, subset, FAST, device=CPU,
                    loss_fn=lambda logits, labels: logits.sum() * float("nan"))


def test_predict_restores_mode_and_returns_features(data):
    model = build_model(spec_for(data)).train()
    out = predict(model, data.test_images[:10], device=CPU, batch_size=4)
    assert out.logits.shape == (10, 10) and out.features.shape == (10, model.feature_dim)
    assert np.allclose(out.probabilities.sum(1), 1.0, atol=1e-5)
    assert model.training


def test_resnet18_is_cifar_style():
    model = build_model(ModelSpec("resnet18", 3, 10, (0.5,) * 3, (0.25,) * 3)).eval()
    assert model.stem[0].kernel_size == (3, 3) and model.stem[0].stride == (1, 1)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in model.modules())
    x = torch.rand(2, 3, 32, 32)
    assert model.features(x).shape == (2, 512) and model(x).shape == (2, 10)
    assert 11_000_000 < sum(p.numel() for p in model.parameters()) < 11_300_000


def test_bad_names_and_devices():
    with pytest.raises(ValueError, match="unknown architecture 'vgg'"):
        build_model(ModelSpec("vgg"))
    with pytest.raises(ValueError, match="epochs must be ≥ 1"):
        TrainRecipe(epochs=0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
        assert resolve_device("auto").type == "cpu"
