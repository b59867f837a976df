"""Input attributions: shapes, [0, 1] range, finiteness, determinism, joint normalisation; models untouched."""
import copy

import numpy as np
import pytest
import torch

from engine.attribution import ATTRIBUTION_METHODS, attribute, explain, normalise_jointly
from engine.models import ModelSpec, build_model
from engine.progress import RunCancelled

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    original = build_model(ModelSpec(num_classes=3)).eval()
    other = copy.deepcopy(original)
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(0.9)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 1, 16, 16), dtype=torch.uint8, generator=generator)
    return original, other, images, np.array([0, 1, 2, 0])


@pytest.mark.parametrize("method", ATTRIBUTION_METHODS)
def test_attribute_shape_and_sign(setup, method):
    model, _, images, labels = setup
    maps = attribute(model, images, labels, method, device=CPU, steps=8)
    assert maps.shape == (4, 16, 16) and maps.dtype == np.float32
    assert np.all(np.isfinite(maps)) and maps.min() >= 0
    again = attribute(model, images, labels, method, device=CPU, steps=8)
    assert np.array_equal(maps, again)


def test_attribute_rejects_unknown_method(setup):
    model, _, images, labels = setup
    with pytest.raises(ValueError, match="unknown attribution method"):
        attribute(model, images, labels, "lime", device=CPU)


def test_normalise_jointly_keeps_relative_strength():
    maps = np.zeros((2, 1, 4, 4), np.float32)
    maps[0, 0] = 2.0
    maps[1, 0] = 1.0
    out = normalise_jointly(maps, percentile=100)
    assert out[0, 0].max() == pytest.approx(1.0) and out[1, 0].max() == pytest.approx(0.5)
    assert np.all(normalise_jointly(np.zeros((2, 3, 4, 4))) == 0)


def test_attributions_bundle(setup):
    original, other, images, labels = setup
    training = original.training
    state = {k: v.clone() for k, v in original.state_dict().items()}
    original.train()  # a model left in train mode must come back in train mode
    result = explain({"original": original, "unlearned": other}, images, labels, device=CPU, steps=8,
                          sample_ids=np.array([5, 6, 7, 8]), in_forget=np.array([1, 1, 0, 0], bool))
    assert original.training
    original.train(training)
    assert all(torch.equal(state[k], v) for k, v in original.state_dict().items())
    assert all(p.grad is None for p in original.parameters())
    assert result.models == ("original", "unlearned") and result.methods == ATTRIBUTION_METHODS
    assert result.maps.shape == (2, 3, 4, 16, 16)
    assert result.maps.min() >= 0 and result.maps.max() <= 1 and np.all(np.isfinite(result.maps))
    assert result.scale.shape == (2, 3, 4) and result.predictions.shape == (2, 4)
    assert result.images.shape == (4, 16, 16, 1) and result.images.dtype == np.uint8
    assert np.array_equal(result.targets, labels) and result.in_forget.tolist() == [True, True, False, False]
    assert np.all((result.target_probability >= 0) & (result.target_probability <= 1))
    # each (method, image) reaches 1 in at least one model or is all zero: joint, not per-model, scaling
    peak = result.maps.max(axis=(0, 3, 4))
    assert np.all(np.isclose(peak, 1.0) | (peak == 0))


def test_attributions_cancel(setup):
    original, other, images, labels = setup
    with pytest.raises(RunCancelled):
        explain({"original": original}, images, labels, device=CPU, should_stop=lambda: True)
