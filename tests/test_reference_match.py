"""The evaluation's own correctness: a Retrain reference stands for a run only when it was trained for it
(dataset, split seed, recipe); the tuning proxy's attack is balanced; an unbalanced evaluation attack is said."""
from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch

from engine import ForgetSpec, make_split
from engine.data import _make
from engine.evaluation import evaluate
from engine.privacy import AttackImbalanceWarning, balanced_positions
from engine.references import CHECKPOINT_DIR, find_reference, locate_reference, reference_metrics

SPEC = ForgetSpec(classes=(1,))


def test_shipped_reference_only_for_its_split_seed():
    assert find_reference("fashion-mini", SPEC) is not None             # shipped, split seed 0
    assert find_reference("fashion-mini", SPEC, split_seed=1) is None
    assert locate_reference("fashion-mini", SPEC, split_seed=1) == (None, "")
    assert reference_metrics("fashion-mini", SPEC, split_seed=1) == (None, "")
    assert reference_metrics("fashion-mini", SPEC)[0]["UA"] > 99


def test_reference_of_another_recipe_is_not_used(tmp_path):
    folder = tmp_path / "fashion-mini"
    folder.mkdir()
    for name in ("original", "retrain-class-1"):
        for suffix in (".json", ".safetensors"):
            shutil.copy(CHECKPOINT_DIR / "fashion-mini" / f"{name}{suffix}", folder / f"{name}{suffix}")
    assert find_reference("fashion-mini", SPEC, tmp_path) is not None
    sidecar = json.loads((folder / "retrain-class-1.json").read_text())
    sidecar["recipe"]["epochs"] = 3                                        # not the original's recipe
    (folder / "retrain-class-1.json").write_text(json.dumps(sidecar))
    assert find_reference("fashion-mini", SPEC, tmp_path) is None
    assert find_reference("fashion-mini", SPEC, tmp_path, recipe=sidecar["recipe"]) is not None


def test_computed_reference_keeps_split_seeds_apart(tmp_path):
    from engine.references import computed_reference_path

    zero = computed_reference_path(tmp_path, "tiny", SPEC)
    one = computed_reference_path(tmp_path, "tiny", SPEC, split_seed=1)
    assert zero != one
    for path, seed in ((zero, 0), (one, 0)):         # a file under split 1's name that says split seed 0
        path.with_suffix(".json").write_text(json.dumps({"dataset": "tiny", "split_seed": seed}))
        path.write_bytes(b"")
    assert locate_reference("tiny", SPEC, tmp_path) == (zero, "computed")
    assert locate_reference("tiny", SPEC, tmp_path, split_seed=1) == (None, "")


def test_balanced_positions_subsample_the_larger_side():
    members, non_members = balanced_positions(1000, 1800, seed=0)
    assert len(members) == len(non_members) == 1000
    assert np.array_equal(members, np.arange(1000))
    assert len(set(non_members.tolist())) == 1000 and np.all(np.diff(non_members) > 0)
    assert np.array_equal(non_members, balanced_positions(1000, 1800, seed=0)[1])   # seeded


def test_tuning_proxy_attack_is_balanced(tiny, monkeypatch):
    import engine.privacy
    from engine.tuning import validation_proxy

    dataset, _, model = tiny
    seen = []
    real = engine.privacy.mia_efficacy

    def recording(members, non_members, targets):
        seen.append((len(members), len(non_members)))
        return real(members, non_members, targets)

    monkeypatch.setattr(engine.privacy, "mia_efficacy", recording)
    for spec in (SPEC, ForgetSpec(fraction=0.1)):
        split = make_split(dataset, spec)
        assert len(split.retain) != len(split.validation)       # the sets differ in size: balancing matters
        validation_proxy(model, dataset, split, torch.device("cpu"))
    assert seen and all(m == n for m, n in seen), seen


def _small_retain_dataset():
    """A retain set smaller than the test set: 40 training images (8 held out, 12 forgotten), 60 test."""
    rng = np.random.default_rng(1)
    labels = np.arange(100) % 4
    images = rng.integers(0, 255, (100, 12, 12)).astype(np.uint8)
    return _make("tiny-small", ("a", "b", "c", "d"), images[:40], labels[:40], images[40:], labels[40:],
                 hflip=False, validation_size=8, source="synthetic")


def test_unbalanced_evaluation_attack_is_reported(tiny):
    dataset, split, model = tiny
    with warnings.catch_warnings():
        warnings.simplefilter("error", AttackImbalanceWarning)
        balanced = evaluate(model, dataset, split, device=torch.device("cpu"))
    assert balanced.mia_balanced and balanced.to_dict()["mia_members"] == len(split.test)
    small = _small_retain_dataset()
    small_split = make_split(small, SPEC)
    assert len(small_split.retain) < len(small_split.test)
    with pytest.warns(AttackImbalanceWarning, match="smaller than the test set"):
        figures = evaluate(model, small, small_split, device=torch.device("cpu")).to_dict()
    assert figures["mia_members"] == len(small_split.retain) < figures["mia_non_members"] == len(small_split.test)
    assert figures["mia_balanced"] is False


def test_unlearn_at_another_split_seed_reports_no_reference(tmp_path):
    from engine.cli import main

    out = tmp_path / "ga.json"
    assert main(["unlearn", "--forget-classes", "1", "--method", "ga", "--set", "epochs=1", "--split-seed", "1",
                 "--device", "cpu", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["reference"] is None and figures["avg_gap"] is None
    assert "split seed 1" in figures["reference_note"]
