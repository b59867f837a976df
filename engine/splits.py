"""Forget specifications and the explicit split they produce.

A split is a value: index arrays over one `ImageDataset` (training pool and test set), never labels
rewritten in place. The validation part is held out of training altogether (for choosing
hyperparameters), deterministically from a seed, stratified by class.

Notation (docs/method.md): D = retain ∪ forget (the training set), D_r = `retain`, D_f = `forget`,
D_t = `test` (in class-wise forgetting the test set without the forgotten classes; their test images are
`test_forget`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from engine.data import ImageDataset


@dataclass(frozen=True)
class ForgetSpec:
    """What to forget: whole classes, a random fraction of the training set, or explicit sample ids.

    Exactly one of ``classes``, ``fraction`` and ``sample_ids`` is set. Sample ids index the dataset's
    training pool (``dataset.train_images``).
    """

    classes: tuple[int, ...] = ()
    fraction: float | None = None
    sample_ids: tuple[int, ...] = ()
    seed: int = 0  # draws the random fraction

    def __post_init__(self):
        object.__setattr__(self, "classes", tuple(sorted({int(c) for c in self.classes})))
        object.__setattr__(self, "sample_ids", tuple(sorted({int(i) for i in self.sample_ids})))
        chosen = sum([bool(self.classes), self.fraction is not None, bool(self.sample_ids)])
        if chosen != 1:
            raise ValueError("a forget spec needs exactly one of: classes, fraction, sample ids "
                             f"(got classes={self.classes}, fraction={self.fraction}, {len(self.sample_ids)} ids)")
        if self.fraction is not None and not 0.0 < float(self.fraction) < 1.0:
            raise ValueError(f"forget fraction must lie in (0, 1), got {self.fraction}")

    @property
    def kind(self) -> str:
        return "class" if self.classes else "random" if self.fraction is not None else "samples"

    @property
    def setting(self) -> str:
        """Which tuned defaults serve this forget set: "class" (one class), "classes" (several at once), "random"
        or "samples" (`engine.methods.setting_defaults`; a method without "classes" defaults uses its "class")."""
        return "classes" if len(self.classes) > 1 else self.kind

    def describe(self, class_names: tuple[str, ...] | None = None) -> str:
        if self.classes:
            names = [class_names[c] if class_names and c < len(class_names) else str(c) for c in self.classes]
            return ("class " if len(names) == 1 else "classes ") + ", ".join(names)
        if self.fraction is not None:
            return f"random {self.fraction:.0%} (seed {self.seed})"
        return f"{len(self.sample_ids)} chosen samples"

    def key(self) -> str:
        """The spec's identity as a short stable string: it names the files of Retrain references trained on
        demand and matches records to forget sets, across processes and releases (the first 12 hex digits of
        the SHA-1 of the canonical JSON form; equal specs, equal keys)."""
        return hashlib.sha1(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def to_dict(self) -> dict:
        return {"classes": list(self.classes), "fraction": self.fraction, "sample_ids": list(self.sample_ids),
                "seed": self.seed}

    @classmethod
    def from_dict(cls, values: dict) -> "ForgetSpec":
        return cls(classes=tuple(values.get("classes") or ()), fraction=values.get("fraction"),
                   sample_ids=tuple(values.get("sample_ids") or ()), seed=int(values.get("seed", 0)))


@dataclass(frozen=True, eq=False)
class DataSplit:
    """Index arrays (int64) over one dataset. `train` = retain ∪ forget; `validation` is never trained on."""

    retain: np.ndarray
    forget: np.ndarray
    validation: np.ndarray          # validation images of the classes that are kept
    validation_forget: np.ndarray   # validation images of forgotten classes (class-wise only)
    test: np.ndarray                # D_t: test images of the classes that are kept
    test_forget: np.ndarray         # test images of forgotten classes (class-wise only)
    forget_classes: tuple[int, ...] = ()
    spec: ForgetSpec | None = field(default=None)

    @property
    def train(self) -> np.ndarray:
        return np.sort(np.concatenate([self.retain, self.forget]))

    def summary(self) -> dict:
        return {"retain": len(self.retain), "forget": len(self.forget), "validation": len(self.validation),
                "test": len(self.test), "test_forget": len(self.test_forget)}


def validation_indices(dataset: ImageDataset, seed: int = 0, size: int | None = None) -> np.ndarray:
    """A stratified, seeded hold-out of the training pool (sorted indices)."""
    size = dataset.validation_size if size is None else size
    labels = dataset.train_labels.numpy()
    rng = np.random.default_rng(seed)
    share = size / len(labels)
    chosen = []
    for c in range(dataset.num_classes):
        members = np.flatnonzero(labels == c)
        chosen.append(rng.choice(members, int(round(share * len(members))), replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def make_split(dataset: ImageDataset, spec: ForgetSpec, split_seed: int = 0) -> DataSplit:
    """Turn a forget spec into index arrays.

    Args:
        dataset: the dataset the indices refer to.
        spec: what to forget.
        split_seed: seeds the validation hold-out (the same for the original model and every run on it).

    Raises:
        ValueError: a class out of range, every class forgotten, an id outside the training set, an empty forget set.
    """
    labels = dataset.train_labels.numpy()
    held_out = validation_indices(dataset, split_seed)
    in_train = np.ones(len(labels), dtype=bool)
    in_train[held_out] = False
    train = np.flatnonzero(in_train)
    test_labels = dataset.test_labels.numpy()
    classes = spec.classes
    if classes:
        bad = [c for c in classes if not 0 <= c < dataset.num_classes]
        if bad:
            raise ValueError(f"class index {bad[0]} out of range for {dataset.name} (0..{dataset.num_classes - 1})")
        if len(classes) >= dataset.num_classes:
            raise ValueError(f"cannot forget every class of {dataset.name}: nothing would be left to retain")
        is_forget = np.isin(labels[train], classes)
    elif spec.fraction is not None:
        rng = np.random.default_rng(spec.seed)
        count = int(round(spec.fraction * len(train)))
        is_forget = np.zeros(len(train), dtype=bool)
        is_forget[rng.choice(len(train), count, replace=False)] = True
    else:
        ids = np.asarray(spec.sample_ids, dtype=np.int64)
        outside = ids[(ids < 0) | (ids >= len(labels))]
        if len(outside):
            raise ValueError(f"sample id {outside[0]} out of range for {dataset.name} (0..{len(labels) - 1})")
        held = ids[~in_train[ids]]
        if len(held):
            raise ValueError(f"sample id {held[0]} belongs to the validation hold-out, not the training set")
        is_forget = np.isin(train, ids)
    forget, retain = train[is_forget], train[~is_forget]
    if len(forget) == 0:
        raise ValueError(f"the forget set is empty ({spec.describe()})")
    if len(retain) == 0:
        raise ValueError("the retain set is empty: nothing would be left to train on")
    test = np.arange(len(test_labels))
    test_forget_mask = np.isin(test_labels, classes) if classes else np.zeros(len(test), dtype=bool)
    val_forget_mask = np.isin(labels[held_out], classes) if classes else np.zeros(len(held_out), dtype=bool)
    return DataSplit(retain=retain.astype(np.int64), forget=forget.astype(np.int64),
                     validation=held_out[~val_forget_mask], validation_forget=held_out[val_forget_mask],
                     test=test[~test_forget_mask], test_forget=test[test_forget_mask],
                     forget_classes=classes, spec=spec)


def training_indices(dataset: ImageDataset, split_seed: int = 0) -> np.ndarray:
    """The full training set D (the training pool minus the validation hold-out): what the original model sees."""
    mask = np.ones(len(dataset.train_labels), dtype=bool)
    mask[validation_indices(dataset, split_seed)] = False
    return np.flatnonzero(mask).astype(np.int64)
