"""Named hand-picked forget sets: reproducible stand-ins for "a user ticks images in the grid".

A user's hand-picked set is tens to hundreds of training images, from one class or several, some the model
gets right and some it gets wrong. The benchmark and the shipped audit populations need such sets *fixed*, so
they are drawn once by a seeded rule (`draw`) and stored with the shipped populations
(``assets/populations/<dataset>/sample-sets.json``, written by ``python -m scripts.build_populations``):

- ``one-class-100``: 100 images of one class (drawn by the seed): 75 the original classifies correctly, 25 it
  gets wrong (fewer wrong ones when the class has fewer, topped up with right ones).
- ``mixed-200``: 200 images from every class, 20 per class: 150 right, 50 wrong overall.

``--scenarios samples:NAME`` in ``python -m engine bench`` and ``--forget-set NAME`` in the CLI read them by name.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent / "assets" / "populations"
FILE = "sample-sets.json"
RULES = {
    "one-class-100": {"classes": 1, "per_class": 100, "wrong_share": 0.25},
    "mixed-200": {"classes": None, "per_class": 20, "wrong_share": 0.25},
}


def draw(name: str, pool: np.ndarray, labels: np.ndarray, predictions: np.ndarray, seed: int) -> list[int]:
    """The ids of sample set ``name`` drawn from training-pool ids ``pool`` (labels and the original's predictions
    are indexed by pool id), seeded: wrong ones first up to the rule's share, right ones for the rest (a class
    short of either kind gives what it has)."""
    rule = RULES[name]
    rng = np.random.default_rng(seed)
    classes = np.unique(labels[pool])
    chosen_classes = classes if rule["classes"] is None else rng.choice(classes, rule["classes"], replace=False)
    ids = []
    for c in sorted(int(x) for x in chosen_classes):
        members = pool[labels[pool] == c]
        wrong = members[predictions[members] != c]
        right = members[predictions[members] == c]
        n_wrong = min(len(wrong), int(round(rule["per_class"] * rule["wrong_share"])))
        n_right = min(len(right), rule["per_class"] - n_wrong)
        n_wrong = min(len(wrong), rule["per_class"] - n_right)   # too few right ones: more wrong ones (small data)
        picked = list(rng.choice(wrong, n_wrong, replace=False)) + list(rng.choice(right, n_right, replace=False))
        ids += [int(i) for i in picked]
    return sorted(ids)


def load(dataset_name: str, root: Path = ROOT) -> dict:
    """name → {"ids": [...], "rule": ..., ...} of the dataset's shipped sample sets ({} when none are shipped)."""
    path = Path(root) / dataset_name / FILE
    return json.loads(path.read_text())["sets"] if path.is_file() else {}


def ids_of(dataset_name: str, name: str, root: Path = ROOT) -> tuple[int, ...]:
    sets = load(dataset_name, root)
    if name not in sets:
        raise ValueError(f"no sample set {name!r} for {dataset_name}; shipped: {', '.join(sets) or 'none'}")
    return tuple(sets[name]["ids"])
