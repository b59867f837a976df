"""Weight maps: 2-D shapes, block averaging, summary figures, the A-vs-B comparison; inputs never mutated."""
import copy

import numpy as np
import pytest
import torch

from engine.models import ModelSpec, build_model
from engine.weight_maps import as_matrix, block_average, map_weights


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    original = build_model(ModelSpec(num_classes=4)).eval()
    unlearned = copy.deepcopy(original)
    with torch.no_grad():
        unlearned.head.weight[0].add_(1.0)   # only the first head row moves
    return original, unlearned


def scores_for(model, hot: str):
    """All scores tiny except one parameter tensor's (distinct, so the top-k has no ties)."""
    return {name: (10.0 + torch.arange(p.numel(), dtype=torch.float32).reshape(p.shape) if name == hot
                   else torch.full_like(p, 1e-3)) for name, p in model.named_parameters()}


def test_as_matrix_shapes():
    assert as_matrix(torch.zeros(8, 3, 3, 3)).shape == (8, 27)
    assert as_matrix(torch.zeros(10, 128)).shape == (10, 128)
    assert as_matrix(torch.zeros(32)).shape == (1, 32)
    assert as_matrix(np.float32(2.0)).shape == (1, 1)


def test_block_average_hand_computed():
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4)
    averaged, factors = block_average(matrix, 2)
    assert factors == (2, 2)
    # blocks: rows {0,1} × cols {0,1}, {2,3}; row {2} (partial) × cols {0,1}, {2,3}
    assert averaged == pytest.approx(np.array([[2.5, 4.5], [8.5, 10.5]]))
    same, unit = block_average(matrix, 256)
    assert unit == (1, 1) and np.array_equal(same, matrix)
    big, factors = block_average(np.ones((512, 4608)), 256)
    assert big.shape == (256, 256) and factors == (2, 18) and np.all(big == 1)


def test_weight_maps_shapes_ranges_and_summary(models):
    original, unlearned = models
    before = {k: v.clone() for k, v in original.state_dict().items()}
    scores = scores_for(original, "head.weight")
    maps = map_weights(original, unlearned, scores, compare_scores=scores_for(original, "block4.0.weight"),
                       sparsity=40 / sum(p.numel() for p in original.parameters()), max_side=100)
    names = list(maps.names)
    assert names == [n for n, _ in original.named_parameters()]
    layers = len(names)
    for key in ("saliency", "soft", "hard", "delta", "compare_hard", "difference"):
        assert len(getattr(maps, key)) == layers
    for key in ("size", "selected", "selected_compare", "jaccard", "mean_saliency", "mean_soft", "delta_norm",
                "relative_delta", "changed"):
        assert getattr(maps, key).shape == (layers,), key
    conv = names.index("block4.0.weight")          # (128, 96, 3, 3) -> (128, 864) -> factors (2, 9)
    assert maps.shapes[conv] == (128, 96, 3, 3)
    assert maps.saliency[conv].shape == (64, 96) and tuple(maps.factors[conv]) == (2, 9)
    bn = names.index("block1.1.weight")
    assert maps.soft[bn].shape == (1, 32)
    head = names.index("head.weight")
    assert maps.hard[head].shape == (4, 64) and tuple(maps.factors[head]) == (1, 2)
    for key in ("soft", "hard", "compare_hard"):
        for array in getattr(maps, key):
            assert array.min() >= 0 and array.max() <= 1 and np.all(np.isfinite(array))
    for array in maps.difference:
        assert array.min() >= -1 and array.max() <= 1
    # the hard mask is exactly head.weight (its 512 scores are the top 40)
    assert maps.selected[head] == pytest.approx(40 / 512)
    assert maps.selected.sum() == pytest.approx(40 / 512)
    assert maps.selected_compare[conv] == pytest.approx(40 / (128 * 96 * 9))
    assert maps.jaccard[head] == pytest.approx(0.0)
    assert np.isnan(maps.jaccard[bn])               # neither mask touches it
    # movement: only the first head row moved, by 1 in each of its 128 entries
    assert maps.delta_norm[head] == pytest.approx(np.sqrt(128), rel=1e-5)
    assert maps.changed[head] == pytest.approx(0.25)
    assert np.all(maps.delta_norm[[i for i in range(layers) if i != head]] == 0)
    assert maps.relative_delta[head] == pytest.approx(np.sqrt(128) / float(original.head.weight.detach().norm()), rel=1e-5)
    # inputs untouched
    assert all(torch.equal(before[k], v) for k, v in original.state_dict().items())


def test_weight_maps_same_set_gives_full_overlap(models):
    original, unlearned = models
    scores = {name: torch.rand_like(p, generator=torch.Generator().manual_seed(1)) for name, p in original.named_parameters()}
    maps = map_weights(original, unlearned, scores, compare_scores=scores)
    assert np.all((maps.jaccard == 1.0) | np.isnan(maps.jaccard))
    assert all(np.all(d == 0) for d in maps.difference)
    alone = map_weights(original, unlearned, scores)
    assert alone.compare_hard == () and np.all(np.isnan(alone.jaccard)) and alone.compare_description == ""
    total = sum(p.numel() for p in original.parameters())
    assert float((alone.selected * alone.size).sum()) / total == pytest.approx(0.5, abs=1e-3)


def test_weight_maps_rejects_other_architecture(models):
    original, _ = models
    other = build_model(ModelSpec(num_classes=7))
    with pytest.raises(ValueError, match="does not match"):
        map_weights(original, other, scores_for(original, "head.weight"))
