"""Evaluate a model under a split: every SalUn metric from one pass of `predict` per image set."""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Optional

import numpy as np
import torch
from torch import nn

from engine.data import ImageDataset
from engine.metrics import GAP_KEYS, accuracy, avg_gap, confusion_matrix, per_class_accuracy, unlearning_accuracy
from engine.privacy import AttackImbalanceWarning, attack_sizes, mia_efficacy, true_label_confidence
from engine.splits import DataSplit
from engine.training import Outputs, predict


@dataclass(frozen=True, eq=False)
class SplitOutputs:
    """A model's outputs on every part of a split (train pool indices follow `split.train`)."""

    train: Outputs          # on split.train (sorted retain ∪ forget)
    validation: Outputs     # on split.validation then split.validation_forget
    test: Outputs           # on the whole test set


@dataclass(frozen=True, eq=False)
class Evaluation:
    """All figures in percent. `forget_test_acc` is NaN unless whole classes are forgotten."""

    UA: float
    RA: float
    TA: float
    MIA: float
    forget_test_acc: float
    validation_acc: float       # accuracy on the kept classes of the validation hold-out (for tuning)
    per_class_test_acc: np.ndarray = field(repr=False)   # (C,)
    confusion: np.ndarray = field(repr=False)            # (C, C), whole test set
    seconds: float = 0.0
    mia_members: int = 0        # what the MIA attack trained on: fewer members than non-members when |D_r| < |D_t|
    mia_non_members: int = 0

    @property
    def mia_balanced(self) -> bool:
        return self.mia_members == self.mia_non_members

    def scores(self) -> dict[str, float]:
        return {"UA": self.UA, "RA": self.RA, "TA": self.TA, "MIA": self.MIA}

    def to_dict(self, reference: Optional[Mapping[str, float]] = None) -> dict:
        values = {**self.scores(), "forget_test_acc": self.forget_test_acc, "validation_acc": self.validation_acc,
                  "per_class_test_acc": [None if np.isnan(v) else float(v) for v in self.per_class_test_acc],
                  "confusion": self.confusion.tolist(), "eval_seconds": self.seconds,
                  "mia_members": self.mia_members, "mia_non_members": self.mia_non_members,
                  "mia_balanced": self.mia_balanced}
        if reference is not None:
            values["avg_gap"] = avg_gap(self.scores(), reference)
        return values


def split_outputs(model: nn.Module, dataset: ImageDataset, split: DataSplit, *, device: torch.device) -> SplitOutputs:
    """Run the model once over the training set, the validation hold-out and the test set."""
    def on(indices: np.ndarray) -> Outputs:
        return predict(model, dataset.train_images[torch.as_tensor(indices)], device=device)

    validation = np.concatenate([split.validation, split.validation_forget])
    return SplitOutputs(train=on(split.train), validation=on(validation),
                        test=predict(model, dataset.test_images, device=device))


def evaluate_outputs(outputs: SplitOutputs, dataset: ImageDataset, split: DataSplit) -> Evaluation:
    """All metrics from outputs already computed (pure: no model involved)."""
    start = time.perf_counter()
    train_labels = dataset.train_labels.numpy()
    test_labels = dataset.test_labels.numpy()
    train_order = split.train
    position = np.searchsorted(train_order, np.concatenate([split.retain, split.forget]))
    retain_at, forget_at = position[: len(split.retain)], position[len(split.retain):]

    train_pred = outputs.train.predictions
    train_conf = true_label_confidence(outputs.train.probabilities, train_labels[train_order])
    test_pred = outputs.test.predictions
    test_conf = true_label_confidence(outputs.test.probabilities, test_labels)
    validation_pred = outputs.validation.predictions[: len(split.validation)]
    members, non_members = attack_sizes(len(split.retain), len(split.test))
    if members < non_members:
        warnings.warn(f"MIA-Efficacy: the retain set ({members}) is smaller than the test set ({non_members}), so "
                      "the attack trains on fewer members than non-members and its figure leans to 'non-member'",
                      AttackImbalanceWarning, stacklevel=2)

    return Evaluation(
        UA=unlearning_accuracy(train_pred[forget_at], train_labels[split.forget]),
        RA=accuracy(train_pred[retain_at], train_labels[split.retain]),
        TA=accuracy(test_pred[split.test], test_labels[split.test]),
        MIA=mia_efficacy(train_conf[retain_at], test_conf[split.test], train_conf[forget_at]),
        forget_test_acc=accuracy(test_pred[split.test_forget], test_labels[split.test_forget]),
        validation_acc=accuracy(validation_pred, train_labels[split.validation]),
        per_class_test_acc=per_class_accuracy(test_pred, test_labels, dataset.num_classes),
        confusion=confusion_matrix(test_pred, test_labels, dataset.num_classes),
        seconds=time.perf_counter() - start, mia_members=members, mia_non_members=non_members,
    )


def evaluate(model: nn.Module, dataset: ImageDataset, split: DataSplit, *, device: torch.device) -> Evaluation:
    """UA, RA, TA, MIA-Efficacy, forgotten-class test accuracy, per-class accuracy, confusion matrix.

    Example:
        >>> split = make_split(data, ForgetSpec(classes=(3,)))
        >>> evaluate(model, data, split, device=torch.device("cpu")).UA
        100.0
    """
    start = time.perf_counter()
    result = evaluate_outputs(split_outputs(model, dataset, split, device=device), dataset, split)
    object.__setattr__(result, "seconds", time.perf_counter() - start)
    return result


__all__ = ["Evaluation", "SplitOutputs", "evaluate", "evaluate_outputs", "split_outputs", "GAP_KEYS"]
