"""compute_insights end to end on a tiny synthetic dataset: shapes, ranges, determinism, caching, cancel,
progress, save/load; the input models are never changed."""
import copy

import numpy as np
import pytest
import torch

import engine.insights
import engine.projection
from engine.data import ImageDataset
from engine.insights import STAGES, Insights, InsightsCache, InsightsConfig, compute_insights, fingerprint
from engine.weight_maps import comparison_ids
from engine.models import ModelSpec, build_model
from engine.progress import RunCancelled
from engine.splits import ForgetSpec, make_split

CPU = torch.device("cpu")
CONFIG = InsightsConfig(max_points=120, max_test=40, attribution_count=4, attribution_steps=4)


def tiny_dataset(classes=3, per_class=60, test_per_class=20, size=12):
    rng = np.random.default_rng(0)

    def images(count_per_class):
        labels = np.repeat(np.arange(classes), count_per_class)
        pixels = rng.integers(0, 60, (len(labels), 1, size, size))
        for i, label in enumerate(labels):  # a bright square whose place gives the class away
            pixels[i, 0, 2 + 3 * label: 5 + 3 * label, 2:8] = 230
        return torch.from_numpy(pixels.astype(np.uint8)), torch.from_numpy(labels.astype(np.int64))

    train_x, train_y = images(per_class)
    test_x, test_y = images(test_per_class)
    return ImageDataset(name="tiny", classes=tuple("abc"[:classes]), train_images=train_x, train_labels=train_y,
                        test_images=test_x, test_labels=test_y, mean=(0.3,), std=(0.3,), hflip=False,
                        validation_size=30, source="synthetic")


@pytest.fixture(scope="module")
def setup():
    data = tiny_dataset()
    split = make_split(data, ForgetSpec(classes=(0,)))
    torch.manual_seed(0)
    spec = ModelSpec(num_classes=3, mean=(0.3,), std=(0.3,))
    original = build_model(spec).eval()
    unlearned = copy.deepcopy(original)
    with torch.no_grad():
        unlearned.head.bias[0] -= 3.0
        unlearned.block4[0].weight.mul_(0.8)
    torch.manual_seed(1)
    retrained = build_model(spec).eval()
    events = []
    cache = InsightsCache()
    first = compute_insights(original, unlearned, data, split, retrained=retrained, device=CPU, config=CONFIG,
                             cache=cache, on_progress=events.append)
    return data, split, original, unlearned, retrained, cache, first, events


def test_result_shapes_and_ranges(setup):
    data, split, original, unlearned, retrained, cache, insights, _ = setup
    assert insights.models == ("original", "unlearned", "retrained")
    weights = insights.weights
    assert len(weights.names) == len(list(original.parameters())) == len(weights.saliency) == len(weights.compare_hard)
    assert weights.forget_description == "class a" and weights.compare_description == "class b"
    assert np.all(np.isfinite(weights.selected)) and 0 < float((weights.selected * weights.size).sum() / weights.size.sum()) <= 0.5 + 1e-3
    assert np.all(weights.delta_norm >= 0) and weights.delta_norm[weights.names.index("head.bias")] == pytest.approx(3.0)
    maps = insights.attributions
    assert maps.maps.shape == (3, 3, 4, 12, 12) and maps.maps.min() >= 0 and maps.maps.max() <= 1
    assert maps.in_forget.sum() == 3 and np.all(np.isin(maps.sample_ids[maps.in_forget], split.forget))
    space = insights.features
    assert space.coordinates.shape == (3, len(space.sample_ids), 2) and len(space.sample_ids) <= CONFIG.max_points
    assert np.all(np.isfinite(space.coordinates))
    assert set(split.forget) <= set(space.sample_ids)  # every forget sample fits in the budget
    assert np.array_equal(space.in_forget, np.isin(space.sample_ids, split.forget))
    privacy = insights.privacy
    assert privacy.tpr.shape == (3, 2, 4, 101) and privacy.auc.shape == (3, 2, 4)
    assert np.all((privacy.auc >= 0) & (privacy.auc <= 1)) and np.all(np.diff(privacy.tpr, axis=-1) >= 0)
    assert 0.5 <= privacy.worst_case_auc <= 1 and privacy.worst_case_attack in privacy.distinguish_attacks
    assert privacy.forget_nonmembers == "test images of the forgotten classes"
    assert privacy.sizes["forget_nonmembers"] == len(split.test_forget)
    assert set(insights.seconds) == set(STAGES) | {"total"}


def test_progress_is_monotonic_and_complete(setup):
    events = setup[-1]
    steps = [event.step for event in events]
    assert steps == sorted(steps) and steps[-1] == len(STAGES) and events[-1].fraction == 1.0
    assert [event.stage for event in events[:-1]] == [f"insights · {name}" for name in STAGES]


def test_models_unchanged(setup):
    data, split, original, unlearned, retrained, cache, insights, _ = setup
    assert fingerprint(original) == insights.fingerprints["original"]
    assert fingerprint(unlearned) == insights.fingerprints["unlearned"]
    assert not original.training and all(p.grad is None for p in original.parameters())


def test_deterministic_with_warm_cache_and_without(setup, monkeypatch):
    data, split, original, unlearned, retrained, cache, first, _ = setup
    with monkeypatch.context() as patch:  # a warm cache runs no model for outputs, no saliency pass, no UMAP fit
        def refuse(*args, **kwargs):
            raise AssertionError("recomputed although cached")

        patch.setattr(engine.insights, "predict", refuse)
        patch.setattr(engine.insights, "saliency_scores", refuse)
        patch.setattr(engine.projection, "fit_projection", refuse)
        warm = compute_insights(original, unlearned, data, split, retrained=retrained, device=CPU, config=CONFIG,
                                cache=cache)
    cold = compute_insights(original, unlearned, data, split, retrained=retrained, device=CPU, config=CONFIG)
    for other in (warm, cold):
        assert np.array_equal(other.features.coordinates, first.features.coordinates)
        assert np.array_equal(other.attributions.maps, first.attributions.maps)
        assert np.array_equal(other.privacy.auc, first.privacy.auc)
        assert all(np.array_equal(a, b) for a, b in zip(other.weights.saliency, first.weights.saliency))


def test_without_retrained_and_with_options(setup):
    data, split, original, unlearned, retrained, cache, first, _ = setup
    result = compute_insights(original, unlearned, data, split, device=CPU, config=CONFIG, cache=cache,
                              compare_spec=ForgetSpec(classes=(2,)), attribution_ids=np.array([split.retain[0]]))
    assert result.models == ("original", "unlearned")
    assert result.features.coordinates.shape[0] == 2 and result.privacy.auc.shape[0] == 2
    assert np.isnan(result.privacy.worst_case_auc) and np.all(np.isnan(result.privacy.distinguish_auc))
    assert result.weights.compare_description == "class c"
    assert result.attributions.maps.shape == (2, 3, 1, 12, 12) and not result.attributions.in_forget[0]
    # the original model's projection came from the cache: identical frame
    assert np.array_equal(result.features.coordinates[0], first.features.coordinates[0])


def test_comparison_ids_defaults(setup):
    data, split = setup[0], setup[1]
    ids, text = comparison_ids(data, split, None)
    assert text == "class b" and np.all(data.train_labels.numpy()[ids] == 1) and np.all(np.isin(ids, split.train))
    random_split = make_split(data, ForgetSpec(fraction=0.1, seed=3))
    ids, text = comparison_ids(data, random_split, None)
    assert len(ids) == len(random_split.forget) and "random" in text
    same, _ = comparison_ids(data, random_split, ForgetSpec(fraction=0.1, seed=3))
    assert np.array_equal(same, random_split.forget)  # the same draw as make_split


def test_cancel(setup):
    data, split, original, unlearned = setup[:4]
    with pytest.raises(RunCancelled):
        compute_insights(original, unlearned, data, split, device=CPU, config=CONFIG, should_stop=lambda: True)


def test_save_and_load_round_trip(setup, tmp_path):
    insights = setup[6]
    path = insights.save(tmp_path / "run" / "insights")
    assert path.suffix == ".npz" and path.with_suffix(".json").is_file()
    loaded = Insights.load(path)
    assert loaded.models == insights.models and loaded.weights.names == insights.weights.names
    assert loaded.weights.shapes == insights.weights.shapes
    assert all(np.array_equal(a, b) for a, b in zip(loaded.weights.hard, insights.weights.hard))
    assert np.array_equal(loaded.features.coordinates, insights.features.coordinates)
    assert np.array_equal(loaded.privacy.tpr, insights.privacy.tpr)
    assert loaded.privacy.worst_case_auc == insights.privacy.worst_case_auc
    assert loaded.privacy.sizes == insights.privacy.sizes and loaded.seconds == insights.seconds
    assert loaded.attributions.methods == insights.attributions.methods


def test_cache_folder_persists_plain_arrays(tmp_path):
    cache = InsightsCache(tmp_path)
    cache.put("k", {"a": np.arange(3)})
    fresh = InsightsCache(tmp_path)
    assert np.array_equal(fresh.get("k")["a"], np.arange(3)) and fresh.get("missing") is None


def test_config_validation():
    with pytest.raises(ValueError):
        InsightsConfig(max_points=5000)
    with pytest.raises(ValueError):
        InsightsConfig(sparsity=0)
