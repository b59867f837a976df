"""Metrics of the SalUn protocol (docs/method.md §4): pure functions on arrays, all in percent.

- UA  (unlearning accuracy) = 100 − accuracy on D_f. Higher = more forgotten. (Some tools call forget
  accuracy "UA"; we do not.)
- RA  = accuracy on D_r.   TA = accuracy on D_t (without forgotten classes in class-wise forgetting).
- MIA = MIA-Efficacy, see `engine.privacy.mia_efficacy`.
- Avg. Gap = mean over {UA, RA, TA, MIA} of |method − Retrain|. Lower is better.
"""
from __future__ import annotations

import math
from typing import Mapping

import numpy as np

GAP_KEYS = ("UA", "RA", "TA", "MIA")


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Percentage of ``predictions`` equal to ``labels``; NaN for an empty set.

    Example:
        >>> accuracy(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 0]))
        50.0
    """
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions {predictions.shape} and labels {labels.shape} differ in shape")
    if len(labels) == 0:
        return float("nan")
    return float(100.0 * np.mean(predictions == labels))


def unlearning_accuracy(forget_predictions: np.ndarray, forget_labels: np.ndarray) -> float:
    """UA = 100 − accuracy on the forget set."""
    return 100.0 - accuracy(forget_predictions, forget_labels)


def per_class_accuracy(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Accuracy (percent) of each class, NaN for a class with no samples. Shape (num_classes,)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    correct = np.bincount(labels, weights=(predictions == labels).astype(float), minlength=num_classes)
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, 100.0 * correct / np.maximum(counts, 1), np.nan)[:num_classes]


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class. Shape (num_classes, num_classes)."""
    flat = np.asarray(labels) * num_classes + np.asarray(predictions)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def avg_gap(scores: Mapping[str, float], reference: Mapping[str, float], keys=GAP_KEYS) -> float:
    """Mean absolute difference to the Retrain reference over ``keys`` (percentage points).

    Example:
        >>> avg_gap({"UA": 10, "RA": 100, "TA": 90, "MIA": 20}, {"UA": 12, "RA": 100, "TA": 91, "MIA": 17})
        1.5
    """
    missing = [k for k in keys if k not in scores or k not in reference]
    if missing:
        raise ValueError(f"avg_gap needs {', '.join(keys)}; missing {', '.join(missing)}")
    gaps = [abs(float(scores[k]) - float(reference[k])) for k in keys]
    if any(math.isnan(g) for g in gaps):
        return float("nan")
    return float(np.mean(gaps))


def mean_and_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value) of a list of floats."""
    values = np.asarray(list(values), dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0
