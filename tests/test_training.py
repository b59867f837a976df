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


def test_weight_average_tracks_parameters_and_batchnorm_statistics(data):
    from engine.training import WeightAverage

    model = build_model(spec_for(data))
    average = WeightAverage(model, decay=0.5)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    with torch.no_grad():
        for value in model.state_dict().values():
            value.add_(1) if value.is_floating_point() else value.add_(7)
    average.update(model)  # first step: decay min(0.5, 2/11) = 2/11, so the average moves 9/11 of the way
    average.copy_to(model)
    state = model.state_dict()
    assert torch.allclose(state["head.weight"], before["head.weight"] + 9 / 11)
    assert torch.allclose(state["block1.1.running_var"], before["block1.1.running_var"] + 9 / 11)
    assert torch.equal(state["block1.1.num_batches_tracked"], before["block1.1.num_batches_tracked"] + 7)


def test_recipe_ingredients_change_training_and_stay_deterministic(data, subset):
    plain = train_from_scratch(data, subset, recipe=FAST, device=CPU, seed=3)
    for extra in (dict(label_smoothing=0.1), dict(ema_decay=0.9), dict(augment_until=0.5)):
        recipe = TrainRecipe(**{**FAST.to_dict(), **extra})
        first = train_from_scratch(data, subset, recipe=recipe, device=CPU, seed=3)
        second = train_from_scratch(data, subset, recipe=recipe, device=CPU, seed=3)
        assert torch.equal(first.head.weight, second.head.weight), extra
        assert not torch.equal(first.head.weight, plain.head.weight), extra


def test_recipe_rejects_bad_ingredients():
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        TrainRecipe(label_smoothing=1.0)
    with pytest.raises(ValueError, match="ema_decay must be in"):
        TrainRecipe(ema_decay=-0.1)
    with pytest.raises(ValueError, match="augment_until must be in"):
        TrainRecipe(augment_until=1.5)
    assert TrainRecipe(augment_until=1.0).augment_until == 1.0
