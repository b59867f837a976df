"""Projection: the stratified sample, exact kNN, placement, Procrustes alignment, separation, and (one
module-scoped UMAP fit, ~20 s of numba compilation in a fresh process) shapes and determinism."""
import numpy as np
import pytest

from engine.projection import (align, fit_projection, nearest, normalise, numba_cache_dir, place,
                               project_features, separation, stratified_sample, two_group_silhouette, warm_up)


def clustered(seed=0, per_class=60, classes=4, dim=16):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)) * 4
    labels = np.repeat(np.arange(classes), per_class)
    return centres[labels] + rng.normal(size=(len(labels), dim)), labels


def test_stratified_sample_keeps_every_forget_sample_and_balances_retain():
    labels = np.repeat(np.arange(10), 100)
    forget = np.flatnonzero(labels == 3)
    retain = np.flatnonzero(labels != 3)
    ids, in_forget = stratified_sample(labels, retain, forget, max_points=280, seed=0)
    assert len(ids) == 280 and np.all(np.diff(ids) > 0)
    assert set(forget) <= set(ids) and np.array_equal(ids[in_forget], forget)
    counts = np.bincount(labels[ids[~in_forget]], minlength=10)
    assert counts[3] == 0 and set(counts[np.arange(10) != 3]) <= {20}
    again, _ = stratified_sample(labels, retain, forget, max_points=280, seed=0)
    assert np.array_equal(ids, again)
    small, mask = stratified_sample(labels, retain, forget, max_points=100, seed=1)
    assert len(small) == 100 and mask.sum() == 50   # the forget set takes at most half the budget


def test_nearest_is_exact_and_puts_self_first():
    points, _ = clustered()
    index, distance = nearest(points, points, 5, exclude_self=True)
    assert np.array_equal(index[:, 0], np.arange(len(points))) and np.all(distance[:, 0] == 0)
    full = np.linalg.norm(points[:, None] - points[None], axis=2)
    assert distance == pytest.approx(np.sort(full, axis=1)[:, :5], abs=1e-6)


def test_align_recovers_a_rotation_from_anchor_points():
    points, _ = clustered(dim=8)
    rotation, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(8, 8)))
    anchors = np.arange(len(points)) % 2 == 0
    aligned = align(normalise(points) @ rotation, points, anchors)
    assert aligned == pytest.approx(normalise(points), abs=1e-6)  # even the non-anchor points


def test_two_group_silhouette_matches_scikit_learn():
    from sklearn.metrics import silhouette_score

    points, labels = clustered(dim=6)
    unit = normalise(points)
    for group in (labels == 0, np.arange(len(labels)) % 3 == 0, np.arange(len(labels)) == 5):
        assert two_group_silhouette(unit, group) == pytest.approx(silhouette_score(unit, group.astype(int), metric="cosine"), abs=1e-9)


def test_separation_orders_separable_and_mixed_groups():
    points, labels = clustered()
    forget = labels == 0
    far = separation(points, labels, forget)
    mixed = separation(points, labels, np.arange(len(labels)) % 2 == 0)
    assert far[0] > 0.3 and mixed[0] < 0.05
    assert far[1] > mixed[1] >= 0
    assert all(np.isnan(separation(points, labels, np.zeros(len(labels), bool))))


def test_numba_cache_dir_is_outside_the_repository(monkeypatch, tmp_path):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("UNLEARNING_LAB_CACHE", str(tmp_path))
    assert numba_cache_dir() == tmp_path / "numba"


@pytest.fixture(scope="module")
def fitted():
    points, labels = clustered(per_class=50)
    return points, labels, fit_projection(points, seed=0)


def test_warm_up_runs(fitted):
    assert warm_up() >= 0


def test_fit_is_deterministic_and_finite(fitted):
    points, labels, projection = fitted
    assert projection.coordinates.shape == (len(points), 2)
    assert np.all(np.isfinite(projection.coordinates))
    again = fit_projection(points, seed=0)
    assert np.array_equal(projection.coordinates, again.coordinates)


def test_feature_space_shared_frame(fitted):
    points, labels, projection = fitted
    in_forget = labels == 0
    moved = points.copy()
    moved[in_forget] = points[labels == 1][: in_forget.sum()] + 0.01   # forget samples now look like class 1
    rotation, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(points.shape[1],) * 2))
    space, same = project_features({"original": points, "unlearned": moved, "retrained": points @ rotation}, labels,
                                in_forget, np.arange(len(labels)) * 3, projection=projection)
    assert same is projection
    assert space.models == ("original", "unlearned", "retrained") and space.aligned == ("retrained",)
    assert space.coordinates.shape == (3, len(labels), 2) and np.all(np.isfinite(space.coordinates))
    assert np.array_equal(space.coordinates[0], projection.coordinates)
    # unchanged features do not move; a rotated copy, once aligned, does not move either
    assert space.retain_shift[1] == pytest.approx(0.0, abs=1e-5)
    assert space.forget_shift[2] == pytest.approx(0.0, abs=1e-3) and space.retain_shift[2] == pytest.approx(0.0, abs=1e-3)
    # the forget points moved into class 1's cluster
    centre = projection.coordinates[labels == 1].mean(0)
    spread = np.linalg.norm(projection.coordinates[labels == 1] - centre, axis=1).mean()
    assert np.linalg.norm(space.coordinates[1][in_forget].mean(0) - centre) < 2 * spread
    assert space.forget_shift[1] > 5 * spread
    assert space.silhouette[0] > space.silhouette[1]
    assert space.silhouette.shape == space.centroid_distance.shape == (3,)
    with pytest.raises(ValueError, match="different sample"):
        project_features({"original": points[:10]}, labels[:10], in_forget[:10], np.arange(10), projection=projection)
