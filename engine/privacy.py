"""Membership-inference attacks on a model's outputs: pure functions on probability arrays.

`mia_efficacy` is SalUn's MIA-Efficacy (docs/method.md §4): an RBF SVC on the true-label confidence,
trained with members = the first |D_t| retain samples and non-members = D_t; efficacy = the share of
D_f the attack calls non-member (higher = more forgotten). When D_r is smaller than D_t the attack trains
on fewer members than non-members (it keeps all of D_t, as SalUn's code does); `attack_sizes` says so, and the
evaluation reports it (`Evaluation.mia_members`, `mia_non_members`) with an `AttackImbalanceWarning`.
`balanced_positions` draws equal counts (the larger side subsampled, seeded) where a caller picks its own sets.
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-12


class AttackImbalanceWarning(UserWarning):
    """The membership attack trained on fewer members than non-members (the retain set is smaller than D_t)."""


def attack_sizes(retain_count: int, test_count: int) -> tuple[int, int]:
    """(members, non-members) the SVC attack of `mia_efficacy` trains on: min(|D_r|, |D_t|) and |D_t|."""
    return min(int(retain_count), int(test_count)), int(test_count)


def balanced_positions(member_count: int, non_member_count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positions of equally many members and non-members: the larger side subsampled without replacement by a
    seeded generator (sorted positions), the smaller kept whole. An attack fitted on unequal classes learns
    the prior, not membership."""
    count = min(int(member_count), int(non_member_count))
    rng = np.random.default_rng(seed)

    def take(total: int) -> np.ndarray:
        return np.arange(total) if total == count else np.sort(rng.choice(total, count, replace=False))

    return take(int(member_count)), take(int(non_member_count))


def true_label_confidence(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """p_y(x): softmax probability of each sample's true label. Shape (N,)."""
    probabilities = np.asarray(probabilities)
    return probabilities[np.arange(len(labels)), np.asarray(labels)]


def entropy(probabilities: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) of each row."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPS, 1.0)
    return -(p * np.log(p)).sum(1)


def modified_entropy(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Song & Mittal's modified entropy, computed correctly:

    Mentr(p, y) = −(1 − p_y) log p_y − Σ_{c≠y} p_c log(1 − p_c).

    (SalUn's code applies the true-label term to the wrong entries; here the sum runs over c ≠ y only.)
    """
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPS, 1 - _EPS)
    rows = np.arange(len(labels))
    labels = np.asarray(labels)
    p_true = p[rows, labels]
    others = -(p * np.log(1 - p))
    others[rows, labels] = 0.0
    return -(1 - p_true) * np.log(p_true) + others.sum(1)


def cross_entropy_loss(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """−log p_y(x) per sample."""
    return -np.log(np.clip(true_label_confidence(probabilities, labels), _EPS, 1.0))


def mia_efficacy(retain_confidence: np.ndarray, test_confidence: np.ndarray,
                 forget_confidence: np.ndarray) -> float:
    """SalUn's MIA-Efficacy in percent.

    Args:
        retain_confidence: true-label confidence on D_r (the first |D_t| are used as members).
        test_confidence: true-label confidence on D_t (non-members).
        forget_confidence: true-label confidence on D_f (the attack's targets).

    Returns:
        100 × share of D_f predicted "non-member".
    """
    from sklearn.svm import SVC

    if len(forget_confidence) == 0:
        raise ValueError("MIA-Efficacy needs a non-empty forget set")
    members = np.asarray(retain_confidence)[: len(test_confidence)]
    features = np.concatenate([members, np.asarray(test_confidence)]).reshape(-1, 1)
    targets = np.concatenate([np.ones(len(members)), np.zeros(len(test_confidence))])
    attack = SVC(C=3, gamma="auto", kernel="rbf")
    attack.fit(features, targets)
    predicted_member = attack.predict(np.asarray(forget_confidence).reshape(-1, 1))
    return float(100.0 * (1.0 - predicted_member.mean()))
