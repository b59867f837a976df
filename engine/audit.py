"""Per-example privacy audit: is each forget example really forgotten? Pure functions on numpy arrays.

Each measure compares against a *population* of models, not against one Retrain:

- `forgetting_quality`: the NeurIPS-2023 machine-unlearning challenge's score (Triantafillou et al. 2024,
  "Are we making progress in unlearning?"; reference code google-deepmind/unlearning_evaluation, metric.py
  and main.py, read, not copied). Per forget example, decision rules try to tell its φ under N unlearning
  runs from its φ under N retrained models; their error rates give an ε, ε a bucket b worth 2^-b; the mean
  over examples is multiplied by the RA and TA ratios (unlearned / retrained).
- `engine.lira.lira_audit` (its own module): a LiRA-style test (Carlini et al. 2022, "Membership inference
  attacks from first principles"; U-LiRA when the IN side is "trained, then unlearned": Hayes et al.
  2024, "Inexact unlearning needs more careful evaluations"). Per example, Gaussians fit to φ under
  shadow models that never trained on it (OUT) and that did (IN) turn the unlearned model's φ into a
  likelihood ratio; AUC and TPR at low FPR over the forget set.
- `noise_floor`: the Avg. Gap between Retrain models that differ only in seed.

Resolution: rates from N models are multiples of 1/N, so the largest finite ε is ln(N − 1 − Nδ)
(`largest_finite_epsilon`); a TPR at FPR α needs at least 1/α negative trials. See docs/audit.md.

Notation (shapes):
    n            forget examples;  N_u, N_r  unlearning runs / retrained models (the challenge's N).
    φ            logit-scaled confidence log p_y − log(1 − p_y) = z_y − logsumexp_{c≠y} z_c.
    U (N_u, n)   φ of each forget example under each unlearned model;  R (N_r, n) the same, retrained.
    FPR, FNR     error rates of one decision rule on one example;  δ = 1e-5.
    ε_i, b_i     per-example ε estimate and its bucket ⌊ε_i / 0.5⌋, worth 2^-b_i below ⌈ln(N − 1)⌉, else 0.
    S, I (M, n)  shadow models' φ and whether each shadow trained on each example (bool).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from engine.metrics import GAP_KEYS, avg_gap, mean_and_std

DELTA = 1e-5          # the challenge's δ
EPSILON_CAP = 50.0    # ε of a perfectly distinguishable example (the challenge's cap)
BUCKET_WIDTH = 0.5
WINDOW = 2.0          # the challenge's double-threshold "buffer", in units of φ
PEAKY_RATIO = 0.01    # one population's spread < 1 % of the other's: counted as fully distinguishable


def _finite(name: str, array, ndim: int | tuple[int, ...]) -> np.ndarray:
    """float64 copy of `array`, refusing the wrong rank and NaN / infinite entries with a ValueError."""
    array = np.asarray(array, dtype=np.float64)
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if array.ndim not in ndims:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndims))} dimensions, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains {np.sum(~np.isfinite(array))} NaN or infinite values")
    return array


def logit_scaled_confidence(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """φ = log p_y − log(1 − p_y), computed as z_y − logsumexp_{c≠y} z_c (no softmax, so no underflow).

    Args:
        logits: raw model outputs, shape (n, C) or (models, n, C), C ≥ 2.
        labels: true labels, shape (n,).

    Returns:
        float64 array of shape logits.shape[:-1]. φ > 0 means p_y > 1/2.

    Example:
        >>> float(logit_scaled_confidence(np.array([[np.log(3.0), 0.0]]), np.array([0]))[0])  # p_y = 3/4
        1.0986122886681098
    """
    logits = _finite("logits", logits, (2, 3))
    labels = np.asarray(labels)
    if logits.shape[-1] < 2 or labels.shape != logits.shape[-2:-1]:
        raise ValueError(f"logits {logits.shape} need C ≥ 2 classes and one label per row (labels {labels.shape})")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[-1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[-1]})")
    true_class = np.take_along_axis(logits, np.broadcast_to(labels[:, None], logits.shape[:-1] + (1,)), -1)[..., 0]
    others = logits.copy()
    np.put_along_axis(others, np.broadcast_to(labels[:, None], logits.shape[:-1] + (1,)), -np.inf, -1)
    top = others.max(-1)
    return true_class - top - np.log(np.exp(others - top[..., None]).sum(-1))


# --- the challenge's ε and forgetting quality -------------------------------------------------------------

def largest_finite_epsilon(num_runs: int, delta: float = DELTA) -> float:
    """ln(N − 1 − Nδ): the largest ε a pair of non-zero rates (each ≥ 1/N) can give, e.g. 3.43 at N = 32."""
    return float(math.log(num_runs - 1 - num_runs * delta))


def epsilon_limit(num_runs: int) -> float:
    """⌈ln(N − 1)⌉: the challenge's buckets stop here; an ε at or above it scores 0 (N ≥ 3)."""
    return float(math.ceil(math.log(num_runs - 1)))


def _rule_epsilons(fpr: np.ndarray, fnr: np.ndarray, usable: np.ndarray, delta: float) -> np.ndarray:
    """max over the usable rules (last axis) of one example's ε; ∞ when a rule separates perfectly.

    A rule with exactly one zero rate is dropped (the challenge reads it as too few samples); no rule left
    means nothing told the two populations apart: ε = 0.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        bound = np.maximum(np.log(np.maximum(1 - delta - fpr, 0)) - np.log(fnr),
                           np.log(np.maximum(1 - delta - fnr, 0)) - np.log(fpr))
    finite = usable & (fpr > 0) & (fnr > 0)
    epsilon = np.where(finite, np.maximum(bound, 0.0), 0.0).max(-1)
    return np.where((usable & (fpr == 0) & (fnr == 0)).any(-1), np.inf, epsilon)


def _chunk_epsilons(unlearned: np.ndarray, retrained: np.ndarray, delta: float) -> np.ndarray:
    """ε of each column of U (N_u, c) against R (N_r, c). Threshold sweeps are exact: every distinct rule."""
    u, r = unlearned.T, retrained.T                                    # (c, N_u), (c, N_r)
    retrain_positive = np.median(r, 1) > np.median(u, 1)               # positive = the larger median
    spread_u, spread_r = np.ptp(u, 1), np.ptp(r, 1)
    pooled = np.sort(np.concatenate([u, r], 1), 1)                     # (c, K): every threshold that matters
    counts = {}
    for name, group in (("u", u), ("r", r)):
        counts[name, "ge"] = (group[:, None, :] >= pooled[:, :, None]).sum(-1)   # (c, K) integer counts
        counts[name, "gt"] = (group[:, None, :] > pooled[:, :, None]).sum(-1)
    size = {"u": u.shape[1], "r": r.shape[1]}

    def pick(flag, a, b):
        return np.where(flag[:, None], a, b)

    # 1. Single thresholds: call "positive" every φ ≥ t, t at each pooled value.
    tpr = pick(retrain_positive, counts["r", "ge"] / size["r"], counts["u", "ge"] / size["u"])
    fpr = pick(retrain_positive, counts["u", "ge"] / size["u"], counts["r", "ge"] / size["r"])
    single = _rule_epsilons(fpr, 1 - tpr, np.ones_like(fpr, bool), delta)

    # 2. Double thresholds: call the peakier population (smaller spread; the other one on a tie) every φ in
    # [l, r], with r within WINDOW of its maximum and r − l within WINDOW of its spread. The inside set only
    # changes at pooled values, so each (l, r) cell between neighbouring values is one rule; a cell counts
    # when it meets that window (the challenge samples it on a 0.01 grid; here it is exact up to measure zero).
    spread_pos = np.where(retrain_positive, spread_r, spread_u)
    spread_neg = np.where(retrain_positive, spread_u, spread_r)
    peaky_is_r = np.where(spread_pos >= spread_neg, ~retrain_positive, retrain_positive)
    width = np.minimum(spread_u, spread_r)[:, None, None]
    top = np.where(peaky_is_r, r.max(1), u.max(1))[:, None, None]
    left = pooled[:, :, None]                                          # l ∈ (previous value, pooled[a]]
    left_prev = np.concatenate([np.full((len(u), 1), -np.inf), pooled[:, :-1]], 1)[:, :, None]
    right = pooled[:, None, :]                                         # r ∈ [pooled[b], next value)
    right_next = np.concatenate([pooled[:, 1:], np.full((len(u), 1), np.inf)], 1)[:, None, :]
    low = np.maximum(np.maximum(right, top - WINDOW), left_prev + width - WINDOW)
    high = np.minimum(np.minimum(right_next, top + WINDOW), left + width + WINDOW)
    inside = {name: np.clip(counts[name, "ge"][:, :, None] - counts[name, "gt"][:, None, :], 0, None) / size[name]
              for name in ("u", "r")}                                  # (c, K, K): share inside [l, r]
    flag = peaky_is_r[:, None, None]
    tpr = np.where(flag, inside["r"], inside["u"]).reshape(len(u), -1)
    fpr = np.where(flag, inside["u"], inside["r"]).reshape(len(u), -1)
    double = _rule_epsilons(fpr, 1 - tpr, (low < high).reshape(len(u), -1), delta)

    epsilon = np.maximum(single, double)
    # 3. The challenge's guard: a near-constant population next to a spread one is fully distinguishable.
    largest, smallest = np.maximum(spread_u, spread_r), np.minimum(spread_u, spread_r)
    epsilon[(largest > 0) & (smallest < PEAKY_RATIO * largest)] = np.inf
    constant = largest == 0                                            # both constant: equal or not
    epsilon[constant] = np.where(u[constant, 0] == r[constant, 0], 0.0, np.inf)
    return np.minimum(epsilon, EPSILON_CAP)


def example_epsilons(unlearned: np.ndarray, retrained: np.ndarray, *, delta: float = DELTA) -> np.ndarray:
    """The challenge's per-example ε: how well any single- or double-threshold rule tells U from R.

    Args:
        unlearned: U, φ under N_u unlearning runs, shape (N_u, n).
        retrained: R, φ under N_r retrained models, shape (N_r, n); N_u, N_r ≥ 2.
        delta: δ of the (ε, δ) bound.

    Returns:
        ε per example, shape (n,), in [0, EPSILON_CAP]; EPSILON_CAP = perfectly distinguishable.
    """
    unlearned, retrained = _finite("unlearned", unlearned, 2), _finite("retrained", retrained, 2)
    if unlearned.shape[1] != retrained.shape[1] or min(len(unlearned), len(retrained)) < 2:
        raise ValueError(f"need ≥ 2 models per side and the same examples: got {unlearned.shape}, {retrained.shape}")
    # Rules per example grow as (N_u + N_r)²: a chunk of examples keeps each array near 2**21 cells (16 MB).
    chunk = max(1, 2 ** 21 // (len(unlearned) + len(retrained)) ** 2)
    return np.concatenate([_chunk_epsilons(unlearned[:, i:i + chunk], retrained[:, i:i + chunk], delta)
                           for i in range(0, unlearned.shape[1], chunk)])


def epsilon_points(epsilons: np.ndarray, num_runs: int) -> np.ndarray:
    """2^-⌊ε / 0.5⌋ for ε < ⌈ln(N − 1)⌉, else 0: each example's share of the forget score. Shape of ε."""
    epsilons = np.asarray(epsilons, dtype=np.float64)
    bucket = np.floor(epsilons / BUCKET_WIDTH)
    return np.where(epsilons < epsilon_limit(num_runs), 2.0 ** -np.minimum(bucket, 1e3), 0.0)


@dataclass(frozen=True, eq=False)
class ForgettingQuality:
    """The challenge's score and what it is made of. Higher = closer to Retrain (1 = indistinguishable)."""

    score: float                   # forget_score × retain_ratio × test_ratio
    forget_score: float            # mean over examples of `points`
    epsilons: np.ndarray           # (n,) per-example ε
    points: np.ndarray             # (n,) 2^-bucket, 0 at or beyond `epsilon_limit`
    retain_ratio: float            # mean RA of the unlearned models / mean RA of the retrained ones (1 if not given)
    test_ratio: float              # the same for TA
    num_runs: int                  # min(N_u, N_r): the resolution
    largest_finite_epsilon: float  # ln(N − 1 − Nδ)
    epsilon_limit: float           # ⌈ln(N − 1)⌉


def _ratio(name: str, accuracies) -> float:
    if accuracies is None:
        return 1.0
    unlearned, retrained = (float(np.mean(_finite(name, np.atleast_1d(a), 1))) for a in accuracies)
    if retrained <= 0:
        raise ValueError(f"{name}: the retrained models' accuracy must be positive, got {retrained}")
    return unlearned / retrained


def forgetting_quality(unlearned: np.ndarray, retrained: np.ndarray, *, retain_accuracy=None, test_accuracy=None,
                       delta: float = DELTA) -> ForgettingQuality:
    """The NeurIPS-2023 challenge's forgetting quality of one unlearning method on one forget set.

    Args:
        unlearned: U (N_u, n), φ of each forget example under N_u ≥ 3 unlearning runs of the method.
        retrained: R (N_r, n), φ under N_r ≥ 3 retrained models.
        retain_accuracy: (unlearned, retrained) RA, each a float or one value per model; None = ratio 1.
        test_accuracy: the same for TA.
        delta: δ of the (ε, δ) bound.

    Returns:
        ForgettingQuality; buckets follow N = min(N_u, N_r). The ratios are not clipped (as in the challenge),
        so an unlearner more accurate than Retrain can exceed 1.
    """
    two_dimensional = np.ndim(unlearned) == np.ndim(retrained) == 2
    num_runs = min(np.shape(unlearned)[0], np.shape(retrained)[0]) if two_dimensional else 0
    if num_runs < 3:
        raise ValueError("forgetting quality needs ≥ 3 unlearning runs and ≥ 3 retrained models "
                         f"(with N = {num_runs} no ε bucket is below ⌈ln(N − 1)⌉); "
                         "for one run use engine.lira.lira_audit")
    epsilons = example_epsilons(unlearned, retrained, delta=delta)
    points = epsilon_points(epsilons, num_runs)
    retain_ratio, test_ratio = _ratio("retain_accuracy", retain_accuracy), _ratio("test_accuracy", test_accuracy)
    forget_score = float(points.mean())
    return ForgettingQuality(score=forget_score * retain_ratio * test_ratio, forget_score=forget_score,
                             epsilons=epsilons, points=points, retain_ratio=retain_ratio, test_ratio=test_ratio,
                             num_runs=num_runs, largest_finite_epsilon=largest_finite_epsilon(num_runs, delta),
                             epsilon_limit=epsilon_limit(num_runs))


# --- the Retrain noise floor --------------------------------------------------------------------------------

@dataclass(frozen=True)
class NoiseFloor:
    """Avg. Gap between Retrain models that differ only in seed: the smallest gap that means anything."""

    mean: float
    std: float                 # over pairs (pairs share models, so they are not independent)
    gaps: tuple[float, ...]    # one per pair (i < j)
    num_models: int


def noise_floor(evaluations: Sequence[Mapping[str, float]], keys=GAP_KEYS) -> NoiseFloor:
    """`engine.metrics.avg_gap` over every pair of Retrain evaluations ({"UA", "RA", "TA", "MIA"} each).

    Example:
        >>> noise_floor([{"UA": 1, "RA": 99, "TA": 90, "MIA": 10}, {"UA": 3, "RA": 99, "TA": 91, "MIA": 11}]).mean
        1.0
    """
    if len(evaluations) < 2:
        raise ValueError(f"a noise floor needs ≥ 2 Retrain evaluations (different seeds), got {len(evaluations)}")
    gaps = tuple(avg_gap(a, b, keys) for a, b in itertools.combinations(evaluations, 2))
    mean, std = mean_and_std(gaps)
    return NoiseFloor(mean=mean, std=std, gaps=gaps, num_models=len(evaluations))
