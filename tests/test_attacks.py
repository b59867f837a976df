"""Threshold attacks, ROC sampling, the worst-case score, and the modified entropy against hand-computed values."""
import math

import numpy as np
import pytest

from engine.attacks import (ATTACK_SCORES, ROC_GRID, distinguishability, membership_scores, roc_curve,
                            threshold_attacks)
from engine.privacy import entropy, modified_entropy


def softmax(logits):
    shifted = logits - logits.max(1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(1, keepdims=True)


def test_modified_entropy_matches_hand_computation():
    p = np.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])
    labels = np.array([0, 1])
    # Mentr(p, y) = −(1 − p_y) log p_y − Σ_{c≠y} p_c log(1 − p_c)
    first = -(0.3 * math.log(0.7)) - (0.2 * math.log(0.8) + 0.1 * math.log(0.9))
    second = -(0.75 * math.log(0.25)) - (0.25 * math.log(0.75) + 0.5 * math.log(0.5))
    assert modified_entropy(p, labels) == pytest.approx([first, second], rel=1e-9)
    assert first == pytest.approx(0.10700 + 0.04463 + 0.01054, abs=1e-4)  # by hand: 0.16217


def test_modified_entropy_is_zero_for_a_certain_correct_prediction_and_large_for_a_wrong_one():
    p = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    values = modified_entropy(p, np.array([0, 0]))
    assert values[0] == pytest.approx(0.0, abs=1e-9)
    assert values[1] > 20  # −log(1 − p_c) with p_c → 1 for a wrong certain prediction (clipped, finite)
    assert np.all(np.isfinite(values))


def test_entropy_hand_computed():
    assert entropy(np.array([[0.5, 0.5], [1.0, 0.0]])) == pytest.approx([math.log(2), 0.0], abs=1e-9)


def test_scores_are_oriented_member_high():
    confident = np.array([[0.98, 0.01, 0.01]])
    unsure = np.array([[0.4, 0.3, 0.3]])
    labels = np.array([0])
    high, low = membership_scores(confident, labels), membership_scores(unsure, labels)
    assert set(high) == set(ATTACK_SCORES)
    for name in ATTACK_SCORES:
        assert high[name][0] > low[name][0], name


def test_roc_separable_scores_give_auc_one():
    curve = roc_curve(np.array([5.0, 6.0, 7.0]), np.array([1.0, 2.0]))
    assert curve.auc == pytest.approx(1.0)
    assert curve.tpr.shape == ROC_GRID.shape
    assert curve.tpr[0] == pytest.approx(1.0) and curve.tpr_at_1pct_fpr == pytest.approx(1.0)
    reversed_curve = roc_curve(np.array([1.0, 2.0]), np.array([5.0, 6.0, 7.0]))
    assert reversed_curve.auc == pytest.approx(0.0)
    assert reversed_curve.tpr[-1] == pytest.approx(1.0)


def test_roc_identical_distributions_give_auc_half():
    rng = np.random.default_rng(0)
    curve = roc_curve(rng.normal(size=20000), rng.normal(size=20000))
    assert curve.auc == pytest.approx(0.5, abs=0.01)
    assert np.all(np.diff(curve.tpr) >= 0)
    assert np.max(np.abs(curve.tpr - ROC_GRID)) < 0.03  # the diagonal
    tied = roc_curve(np.ones(10), np.ones(30))
    assert tied.auc == pytest.approx(0.5)


def test_roc_rejects_empty_and_non_finite():
    with pytest.raises(ValueError):
        roc_curve(np.array([]), np.array([1.0]))
    with pytest.raises(ValueError):
        roc_curve(np.array([np.nan]), np.array([1.0]))


def test_threshold_attacks_on_separable_outputs():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 10, 500)
    members = softmax(np.eye(10)[labels] * 12 + rng.normal(size=(500, 10)) * 0.1)   # confident, correct
    nonmembers = softmax(rng.normal(size=(500, 10)))                               # unsure
    curves = threshold_attacks(members, labels, nonmembers, labels)
    for name in ATTACK_SCORES:
        assert curves[name].auc > 0.99, name
        assert 0.0 <= curves[name].tpr.min() and curves[name].tpr.max() <= 1.0


def test_threshold_attacks_on_identical_distributions():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(8000, 10)) * 2
    labels = rng.integers(0, 10, 8000)
    curves = threshold_attacks(softmax(logits[:4000]), labels[:4000], softmax(logits[4000:]), labels[4000:])
    for name in ATTACK_SCORES:
        assert curves[name].auc == pytest.approx(0.5, abs=0.03), name


def test_distinguishability_identical_models_is_chance():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 1000)
    p = softmax(rng.normal(size=(1000, 10)))
    result = distinguishability(p, p, labels)
    assert result.attacks == ATTACK_SCORES + ("classifier",)
    assert result.auc.shape == (5,)
    assert np.all((result.auc >= 0.5) & (result.auc <= 1.0))
    assert result.auc[:4] == pytest.approx(0.5)
    assert result.worst_case_auc < 0.6  # the cross-validated classifier cannot exceed chance by much


def test_distinguishability_different_models_is_high():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 10, 600)
    unlearned = softmax(rng.normal(size=(600, 10)) * 0.2)                         # near uniform
    retrained = softmax(np.eye(10)[(labels + 1) % 10] * 8 + rng.normal(size=(600, 10)))  # confident, wrong
    result = distinguishability(unlearned, retrained, labels)
    assert result.worst_case_auc > 0.99
    assert result.worst_case_attack in result.attacks
