"""Metrics against hand-computed answers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from engine.evaluation import SplitOutputs, evaluate_outputs
from engine.metrics import (accuracy, avg_gap, confusion_matrix, mean_and_std, per_class_accuracy,
                            unlearning_accuracy)
from engine.privacy import mia_efficacy, true_label_confidence
from engine.training import Outputs


def test_accuracy_and_unlearning_accuracy():
    predictions, labels = np.array([0, 1, 2, 2, 1]), np.array([0, 1, 1, 2, 0])
    assert accuracy(predictions, labels) == 60.0
    assert unlearning_accuracy(predictions, labels) == 40.0
    assert math.isnan(accuracy(np.array([]), np.array([])))
    with pytest.raises(ValueError, match="differ in shape"):
        accuracy(np.array([1, 2]), np.array([1]))


def test_per_class_accuracy_and_confusion():
    predictions, labels = np.array([0, 1, 1, 2, 0]), np.array([0, 1, 2, 2, 0])
    per_class = per_class_accuracy(predictions, labels, 4)
    assert per_class[:3].tolist() == [100.0, 100.0, 50.0] and math.isnan(per_class[3])
    assert confusion_matrix(predictions, labels, 3).tolist() == [[2, 0, 0], [0, 1, 0], [0, 1, 1]]


def test_avg_gap_hand_computed():
    method = {"UA": 5.0, "RA": 99.0, "TA": 90.0, "MIA": 10.0}
    retrain = {"UA": 7.0, "RA": 100.0, "TA": 91.0, "MIA": 14.0}
    assert avg_gap(method, retrain) == pytest.approx((2 + 1 + 1 + 4) / 4)
    with pytest.raises(ValueError, match="missing MIA"):
        avg_gap({"UA": 1, "RA": 1, "TA": 1}, retrain)


def test_mean_and_std():
    assert mean_and_std([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert mean_and_std([4.0]) == (4.0, 0.0)


def test_true_label_confidence():
    probabilities = np.array([[0.7, 0.3], [0.1, 0.9]])
    assert true_label_confidence(probabilities, np.array([0, 0])).tolist() == [0.7, 0.1]


def test_mia_efficacy_on_clear_cases():
    rng = np.random.default_rng(0)
    members = rng.uniform(0.95, 1.0, 500)       # training samples: confident
    non_members = rng.uniform(0.0, 0.5, 300)    # test samples: unsure
    assert mia_efficacy(members, non_members, rng.uniform(0.0, 0.5, 50)) == 100.0   # looks unseen
    assert mia_efficacy(members, non_members, rng.uniform(0.95, 1.0, 50)) == 0.0    # looks memorised
    with pytest.raises(ValueError, match="non-empty forget set"):
        mia_efficacy(members, non_members, np.array([]))


def test_evaluate_outputs_wires_each_metric_to_its_subset():
    """A 3-class toy: logits chosen so each figure has a known value."""
    from engine.data import from_arrays
    from engine.splits import ForgetSpec, make_split

    labels = np.array([0, 1, 2] * 10)
    images = np.zeros((30, 4, 4), np.uint8)
    data = from_arrays("toy", ("a", "b", "c"), images, labels, images[:9], labels[:9], validation_size=6)
    split = make_split(data, ForgetSpec(classes=(2,)))

    def outputs_for(true, correct):
        logits = np.full((len(true), 3), -5.0, np.float32)
        wrong = (true + 1) % 3
        logits[np.arange(len(true)), np.where(correct, true, wrong)] = 5.0
        return Outputs(logits, np.zeros((len(true), 2), np.float32))

    train_true = labels[split.train]
    train = outputs_for(train_true, train_true != 2)        # forgotten class always wrong, others right
    validation = outputs_for(labels[np.concatenate([split.validation, split.validation_forget])], True)
    test_true = labels[:9]
    test = outputs_for(test_true, np.arange(9) != 0)         # one error among the kept test classes
    result = evaluate_outputs(SplitOutputs(train, validation, test), data, split)
    assert result.UA == 100.0 and result.RA == 100.0 and result.forget_test_acc == 100.0
    assert result.TA == pytest.approx(100 * 5 / 6) and result.validation_acc == 100.0
    assert result.confusion.sum() == 9
