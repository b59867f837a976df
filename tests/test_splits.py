"""Forget specifications become explicit, disjoint, deterministic index arrays; bad specs are named."""
from __future__ import annotations

import numpy as np
import pytest

from engine.data import load_dataset
from engine.splits import ForgetSpec, make_split, training_indices, validation_indices


@pytest.fixture(scope="module")
def data():
    return load_dataset("fashion-mini")


def _check_partition(data, split):
    pool = np.concatenate([split.retain, split.forget, split.validation, split.validation_forget])
    assert len(pool) == len(np.unique(pool)) == len(data.train_labels)
    assert np.array_equal(split.train, training_indices(data))
    test = np.concatenate([split.test, split.test_forget])
    assert len(test) == len(np.unique(test)) == len(data.test_labels)


def test_validation_hold_out_is_stratified_and_seeded(data):
    held = validation_indices(data, seed=0)
    assert len(held) == 2000
    assert np.bincount(data.train_labels.numpy()[held]).tolist() == [200] * 10
    assert np.array_equal(held, validation_indices(data, seed=0))
    assert not np.array_equal(held, validation_indices(data, seed=1))


def test_class_wise_split(data):
    split = make_split(data, ForgetSpec(classes=(3, 7)))
    labels, test_labels = data.train_labels.numpy(), data.test_labels.numpy()
    _check_partition(data, split)
    assert set(labels[split.forget]) == {3, 7} and len(split.forget) == 2000
    assert not np.isin(labels[split.retain], [3, 7]).any()
    assert not np.isin(test_labels[split.test], [3, 7]).any() and len(split.test) == 1600
    assert set(test_labels[split.test_forget]) == {3, 7}
    assert split.forget_classes == (3, 7)


def test_random_fraction_split(data):
    split = make_split(data, ForgetSpec(fraction=0.1, seed=4))
    _check_partition(data, split)
    assert len(split.forget) == 1000 and len(split.test_forget) == 0 and len(split.test) == 2000
    assert np.array_equal(split.forget, make_split(data, ForgetSpec(fraction=0.1, seed=4)).forget)
    assert not np.array_equal(split.forget, make_split(data, ForgetSpec(fraction=0.1, seed=5)).forget)


def test_sample_id_split(data):
    ids = training_indices(data)[[0, 5, 17]]
    split = make_split(data, ForgetSpec(sample_ids=tuple(ids)))
    assert split.forget.tolist() == sorted(ids.tolist())
    _check_partition(data, split)


@pytest.mark.parametrize("spec, message", [
    (dict(classes=(10,)), "class index 10 out of range"),
    (dict(classes=(-1,)), "class index -1 out of range"),
    (dict(classes=tuple(range(10))), "every class"),
    (dict(sample_ids=(12000,)), "sample id 12000 out of range"),
])
def test_bad_specs_are_named(data, spec, message):
    with pytest.raises(ValueError, match=message):
        make_split(data, ForgetSpec(**spec))


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5, -0.2])
def test_fraction_outside_open_interval(fraction):
    with pytest.raises(ValueError, match=f"must lie in \\(0, 1\\), got {fraction}"):
        ForgetSpec(fraction=fraction)


def test_empty_or_ambiguous_spec():
    with pytest.raises(ValueError, match="exactly one of"):
        ForgetSpec()
    with pytest.raises(ValueError, match="exactly one of"):
        ForgetSpec(classes=(1,), fraction=0.1)


def test_validation_ids_cannot_be_forgotten(data):
    held = int(validation_indices(data)[0])
    with pytest.raises(ValueError, match=f"sample id {held} belongs to the validation"):
        make_split(data, ForgetSpec(sample_ids=(held,)))


def test_spec_round_trip_and_description(data):
    spec = ForgetSpec(classes=(3,))
    assert ForgetSpec.from_dict(spec.to_dict()) == spec
    assert spec.describe(data.classes) == "class Dress"
    assert ForgetSpec(fraction=0.1).describe() == "random 10% (seed 0)"
