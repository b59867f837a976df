"""LiRA / U-LiRA: a per-example membership test of the unlearned model against shadow models.

Carlini et al. 2022, "Membership inference attacks from first principles" (LiRA); Hayes et al. 2024,
"Inexact unlearning needs more careful evaluations" (U-LiRA: the IN side is "trained, then unlearned").
Per forget example, Gaussians fit to φ under shadows that never trained on it (OUT) and that did (IN) turn
the unlearned model's φ into a likelihood ratio; AUC and TPR at low FPR over the forget set. Notation as in
`engine.audit` (φ, S, I). A TPR at FPR α needs at least 1/α negative trials, else it is NaN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.attacks import RocCurve, roc_curve
from engine.audit import _finite

MIN_STD = 1e-3        # floor on a fitted std (φ units), so a saturated example cannot divide by zero
LOW_FPRS = (0.01, 0.001)


def tpr_at_fpr(member_scores: np.ndarray, nonmember_scores: np.ndarray, fpr: float) -> float:
    """Best TPR of "member if score ≥ t" with FPR ≤ `fpr`; NaN when fewer than 1/fpr non-members.

    With n non-members the only reachable FPRs are multiples of 1/n, so below 1/n the number would really be
    the TPR at FPR 0, not at `fpr`.
    """
    members, nonmembers = np.ravel(member_scores), np.sort(np.ravel(nonmember_scores))[::-1]
    allowed = math.floor(fpr * len(nonmembers) + 1e-9)      # false positives the budget allows
    if allowed < 1:
        return float("nan")
    if allowed >= len(nonmembers):
        return 1.0
    return float(np.mean(members > nonmembers[allowed]))    # t just above the (allowed + 1)-th largest


def _gaussians(scores: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column sums Σφ, Σφ² and counts over the rows where `mask` is True. Each of shape (n,)."""
    kept = np.where(mask, scores, 0.0)
    return kept.sum(0), (kept ** 2).sum(0), mask.sum(0)


def _std(total, squares, count, fixed: bool) -> np.ndarray:
    """Per-column std (ddof = 1) from sums; with `fixed`, the median over columns (LiRA's few-shadow choice)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.maximum(squares - total ** 2 / count, 0) / (count - 1)
    std = np.sqrt(np.where(count >= 2, var, np.nan))
    if fixed:
        if not np.any(np.isfinite(std)):
            raise ValueError("no example has 2 shadows on one side: too few shadow models to fit a std")
        std = np.full_like(std, np.nanmedian(std))
    return np.maximum(std, MIN_STD)


def lira_statistic(target, out_mean, out_std, in_mean=None, in_std=None) -> np.ndarray:
    """The attack statistic, higher = "still looks trained on": online log N(φ; IN) − log N(φ; OUT),
    offline (no IN) the z-score (φ − μ_out) / σ_out. Arguments broadcast; shape of the broadcast."""
    z_out = (target - out_mean) / out_std
    if in_mean is None:
        return z_out
    z_in = (target - in_mean) / in_std
    return 0.5 * (z_out ** 2 - z_in ** 2) + np.log(out_std) - np.log(in_std)


@dataclass(frozen=True, eq=False)
class LiraAudit:
    """Result of `lira_audit`. Positives: the unlearned models' φ; negatives: held-out OUT shadows' φ."""

    statistic: np.ndarray    # (n,) mean statistic of each example under the unlearned models; NaN if skipped
    skipped: np.ndarray      # (n,) bool: too few IN or OUT shadows for this example
    roc: RocCurve            # over all (model, example) trials; .auc, .tpr_at_1pct_fpr
    tpr_at_01pct_fpr: float  # NaN when there are fewer than 1,000 negative trials
    num_positive: int
    num_negative: int
    variant: str             # "online" or "offline"

    @property
    def auc(self) -> float:
        return self.roc.auc


def lira_audit(unlearned, shadow_scores, shadow_in, *, in_scores=None, in_mask=None, variant: str = "online",
               fixed_variance: bool = True) -> LiraAudit:
    """A per-example likelihood-ratio test for any forget set, against a population of shadow models.

    Each forget example j gets OUT = φ under the shadows that never trained on it, IN = φ under the shadows
    that did (plain LiRA: "trained") or, when `in_scores` is given, φ under models trained on it and then
    unlearned with the method under test (U-LiRA). Positive trials: the unlearned models' φ_j. Negative
    trials: each OUT shadow's own φ_j, scored against OUT fitted without it (leave-one-out), so a negative is
    a model that really never saw j, judged like a target. AUC 0.5 = the unlearned model looks like it never
    saw the forget set; 1 = every forget example can be singled out.

    Args:
        unlearned: φ of the n forget examples under the unlearned model(s), shape (n,) or (T, n).
        shadow_scores: S, φ under M shadow models, shape (M, n).
        shadow_in: I, bool (M, n), True where the shadow trained on the example.
        in_scores: optional (M', n) φ under "trained, then unlearned" models; replaces the IN side.
        in_mask: optional bool (M', n): which entries of `in_scores` count (default all).
        variant: "online" (IN and OUT Gaussians) or "offline" (OUT only).
        fixed_variance: one std per side shared by all examples (median of per-example stds), which Carlini
            et al. found better with few shadows; False fits each example's own std.

    Returns:
        LiraAudit. An example needs ≥ 3 OUT shadows (2 with fixed variance) and, online, ≥ 2 IN (1 fixed).
    """
    target = np.atleast_2d(_finite("unlearned", unlearned, (1, 2)))
    shadows = _finite("shadow_scores", shadow_scores, 2)
    members = np.asarray(shadow_in)
    if variant not in ("online", "offline"):
        raise ValueError(f"variant must be 'online' or 'offline', got {variant!r}")
    if members.dtype != bool or members.shape != shadows.shape or target.shape[1] != shadows.shape[1]:
        raise ValueError(f"shadow_in must be bool of shape {shadows.shape} and unlearned have {shadows.shape[1]} "
                         f"columns; got {members.dtype} {members.shape} and {target.shape}")
    out_sum, out_squares, out_count = _gaussians(shadows, ~members)
    # Leave-one-out OUT fits for the negatives: remove each shadow's own φ from its example's sums.
    loo_count = out_count - 1
    loo_sum, loo_squares = out_sum - shadows, out_squares - shadows ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        loo_mean, out_mean = loo_sum / loo_count, out_sum / out_count
    out_std = _std(out_sum, out_squares, out_count, fixed_variance)
    # A shared std barely depends on one shadow; a per-example one is refitted without it.
    loo_std = out_std if fixed_variance else _std(loo_sum, loo_squares, loo_count, False)
    skipped = out_count < (2 if fixed_variance else 3)
    in_mean = in_std = None
    if variant == "online":
        if in_scores is None:
            in_side, in_side_mask = shadows, members
        else:
            in_side = _finite("in_scores", in_scores, 2)
            in_side_mask = np.ones(in_side.shape, bool) if in_mask is None else np.asarray(in_mask, bool)
            if in_side.shape[1] != shadows.shape[1] or in_side_mask.shape != in_side.shape:
                raise ValueError(f"in_scores {in_side.shape} / in_mask {in_side_mask.shape} must cover the n examples")
        in_sum, in_squares, in_count = _gaussians(in_side, in_side_mask)
        with np.errstate(invalid="ignore", divide="ignore"):
            in_mean = in_sum / in_count
        in_std = _std(in_sum, in_squares, in_count, fixed_variance)
        skipped |= in_count < (1 if fixed_variance else 2)
    if skipped.all():
        raise ValueError(f"no forget example has enough shadows on both sides ({len(shadows)} shadow models)")
    positive = lira_statistic(target[:, ~skipped], out_mean[~skipped], out_std[~skipped],
                              None if in_mean is None else in_mean[~skipped],
                              None if in_std is None else in_std[~skipped])
    negative = lira_statistic(shadows, loo_mean, loo_std, in_mean, in_std)[(~members) & ~skipped]
    statistic = np.full(shadows.shape[1], np.nan)
    statistic[~skipped] = positive.mean(0)
    return LiraAudit(statistic=statistic, skipped=skipped, roc=roc_curve(positive, negative),
                     tpr_at_01pct_fpr=tpr_at_fpr(positive, negative, LOW_FPRS[1]), num_positive=positive.size,
                     num_negative=negative.size, variant=variant)
