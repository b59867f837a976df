"""Privacy attacks beyond SalUn's MIA-Efficacy: threshold attacks with ROC curves, and a worst-case score.

Threshold attacks (Yeom et al. 2018; Song & Mittal 2021): a sample is called a *member* when its score
passes a threshold; sweeping the threshold gives a ROC curve and its AUC. Scores, oriented so that a
higher value means "more member-like":

    loss               −ℓ(x, y) = log p_y          (members have low loss)
    confidence         p_y                          (members are predicted confidently)
    entropy            −H(p)                        (members have peaked predictions)
    modified_entropy   −Mentr(p, y)                 (Song & Mittal; label-aware entropy)

An AUC of 0.5 means the attack cannot tell the two sets apart; an AUC below 0.5 means the "members"
look *less* member-like than the non-members (which, on a forget set, is a tell-tale sign of over-forgetting).

The worst-case score (`distinguishability`) asks a stronger question: given the outputs on D_f, can an
attacker tell the unlearned model from Retrain? Each threshold attack and one small classifier
(logistic regression on the sorted probability vector plus the four scores, 5-fold cross-validated) is
scored by its direction-free AUC, max(AUC, 1 − AUC) ∈ [0.5, 1]; the worst case is the best attacker.
0.5 = indistinguishable from exact unlearning (the goal); 1 = perfectly distinguishable.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.privacy import cross_entropy_loss, entropy, modified_entropy, true_label_confidence

ATTACK_SCORES = ("loss", "confidence", "entropy", "modified_entropy")
ROC_GRID = np.linspace(0.0, 1.0, 101)  # the false-positive rates every ROC curve is sampled at


def membership_scores(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The four attack scores per sample, each oriented so that higher = more member-like.

    Args:
        probabilities: softmax outputs (N, C).
        labels: true labels (N,).

    Returns:
        {name in ATTACK_SCORES: float64 array (N,)}.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    return {
        "loss": -cross_entropy_loss(probabilities, labels),
        "confidence": true_label_confidence(probabilities, labels).astype(np.float64),
        "entropy": -entropy(probabilities),
        "modified_entropy": -modified_entropy(probabilities, labels),
    }


@dataclass(frozen=True, eq=False)
class RocCurve:
    """A threshold attack's ROC: `tpr` sampled at the false-positive rates `ROC_GRID`, and its AUC."""

    tpr: np.ndarray          # (len(ROC_GRID),), non-decreasing, from 0 to 1
    auc: float               # area under the exact (not the sampled) curve
    tpr_at_1pct_fpr: float   # the low-false-positive regime (Carlini et al. 2022)


def roc_curve(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> RocCurve:
    """ROC of the attack "member if score ≥ t", over every threshold t.

    Example:
        >>> roc_curve(np.array([2.0, 3.0]), np.array([0.0, 1.0])).auc
        1.0
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics import roc_curve as sk_roc_curve

    member_scores = np.asarray(member_scores, dtype=np.float64).ravel()
    nonmember_scores = np.asarray(nonmember_scores, dtype=np.float64).ravel()
    if len(member_scores) == 0 or len(nonmember_scores) == 0:
        raise ValueError(f"a ROC needs members and non-members (got {len(member_scores)} and {len(nonmember_scores)})")
    if not (np.all(np.isfinite(member_scores)) and np.all(np.isfinite(nonmember_scores))):
        raise ValueError("attack scores must be finite")
    truth = np.concatenate([np.ones(len(member_scores)), np.zeros(len(nonmember_scores))])
    scores = np.concatenate([member_scores, nonmember_scores])
    fpr, tpr, _ = sk_roc_curve(truth, scores, drop_intermediate=False)
    # The step function's value at each grid point: the best TPR reachable with FPR ≤ grid value.
    sampled = np.maximum.accumulate(tpr)[np.searchsorted(fpr, ROC_GRID, side="right") - 1]
    low = float(tpr[np.searchsorted(fpr, 0.01, side="right") - 1])
    return RocCurve(tpr=sampled.astype(np.float32), auc=float(roc_auc_score(truth, scores)), tpr_at_1pct_fpr=low)


def threshold_attacks(member_probabilities: np.ndarray, member_labels: np.ndarray,
                      nonmember_probabilities: np.ndarray, nonmember_labels: np.ndarray) -> dict[str, RocCurve]:
    """Every threshold attack of `ATTACK_SCORES` on one member set against one non-member set."""
    members = membership_scores(member_probabilities, member_labels)
    nonmembers = membership_scores(nonmember_probabilities, nonmember_labels)
    return {name: roc_curve(members[name], nonmembers[name]) for name in ATTACK_SCORES}


def _attack_features(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    scores = membership_scores(probabilities, labels)
    ranked = -np.sort(-np.asarray(probabilities, dtype=np.float64), axis=1)  # label-free, permutation-invariant
    return np.column_stack([ranked, *(scores[name] for name in ATTACK_SCORES)])


@dataclass(frozen=True, eq=False)
class Distinguishability:
    """How well an attacker tells the unlearned model's outputs on D_f from Retrain's (0.5 = not at all)."""

    attacks: tuple[str, ...]   # ATTACK_SCORES + ("classifier",)
    auc: np.ndarray            # (len(attacks),) direction-free AUC, max(AUC, 1 − AUC), in [0.5, 1]
    worst_case_auc: float      # the maximum: the strongest of these attackers
    worst_case_attack: str


def distinguishability(unlearned_probabilities: np.ndarray, retrained_probabilities: np.ndarray,
                       labels: np.ndarray, *, folds: int = 5) -> Distinguishability:
    """Worst-case AUC over simple attacks at telling unlearned-model outputs from Retrain outputs on D_f.

    Args:
        unlearned_probabilities: the unlearned model's softmax outputs on D_f (N, C).
        retrained_probabilities: Retrain's outputs on the same samples (N, C).
        labels: D_f's true labels (N,).
        folds: cross-validation folds of the classifier attack (it is scored only on held-out samples).

    Returns:
        A `Distinguishability`; 0.5 means the unlearned model is as good as exact unlearning to these attackers.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels)
    if len(unlearned_probabilities) != len(retrained_probabilities) or len(labels) != len(unlearned_probabilities):
        raise ValueError("unlearned and retrained outputs must be on the same samples")
    first = membership_scores(unlearned_probabilities, labels)
    second = membership_scores(retrained_probabilities, labels)
    aucs = [roc_curve(first[name], second[name]).auc for name in ATTACK_SCORES]
    features = np.vstack([_attack_features(unlearned_probabilities, labels),
                          _attack_features(retrained_probabilities, labels)])
    truth = np.concatenate([np.ones(len(labels)), np.zeros(len(labels))])
    folds = min(folds, len(labels))
    if folds >= 2:
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
        # Both outputs of one sample stay in the same fold (groups), so no fold is scored on a sample
        # whose twin it was trained on; every fold holds equal numbers of each class.
        groups = np.tile(np.arange(len(labels)), 2)
        held_out = cross_val_predict(classifier, features, truth, cv=GroupKFold(folds), groups=groups,
                                     method="predict_proba")[:, 1]
        aucs.append(float(roc_auc_score(truth, held_out)))
    else:
        aucs.append(float("nan"))
    symmetric = np.array([max(a, 1 - a) if np.isfinite(a) else np.nan for a in aucs], dtype=np.float64)
    names = ATTACK_SCORES + ("classifier",)
    best = int(np.nanargmax(symmetric))
    return Distinguishability(attacks=names, auc=symmetric, worst_case_auc=float(symmetric[best]),
                              worst_case_attack=names[best])


COMPARISONS = ("forget_vs_test", "retain_vs_test")


@dataclass(frozen=True, eq=False)
class PrivacyAttacks:
    """Threshold attacks for M models × 2 comparisons × 4 scores, and the worst-case score."""

    models: tuple[str, ...]             # e.g. ("original", "unlearned", "retrained")
    comparisons: tuple[str, ...]        # COMPARISONS: members D_f or D_r, non-members held-out test images
    scores: tuple[str, ...]             # ATTACK_SCORES
    fpr: np.ndarray                     # (101,) ROC_GRID, shared by every curve
    tpr: np.ndarray                     # (M, 2, 4, 101)
    auc: np.ndarray                     # (M, 2, 4); 0.5 = chance
    tpr_at_1pct_fpr: np.ndarray         # (M, 2, 4)
    distinguish_attacks: tuple[str, ...]  # ATTACK_SCORES + ("classifier",)
    distinguish_auc: np.ndarray         # (5,) unlearned vs Retrain on D_f, direction-free; NaN without Retrain
    worst_case_auc: float               # max of distinguish_auc: 0.5 = as good as exact unlearning
    worst_case_attack: str
    forget_nonmembers: str              # which test images the forget set is compared with
    sizes: dict                         # {"forget": n, "retain": n, "test": n, "forget_nonmembers": n}


def run_attacks(probabilities: dict[str, dict[str, np.ndarray]], labels: dict[str, np.ndarray], *,
                    forget_nonmembers: str = "test") -> PrivacyAttacks:
    """All threshold attacks and the worst-case score from each model's softmax outputs.

    Args:
        probabilities: {model: {"forget", "retain", "test", "forget_nonmembers": (N, C)}}; models in display
            order, "unlearned" and (optionally) "retrained" among them.
        labels: {"forget", "retain", "test", "forget_nonmembers": (N,)}.
        forget_nonmembers: a description of the non-members the forget set is compared with (in class-wise
            forgetting, the test images of the forgotten classes: the same distribution as D_f).
    """
    models = tuple(probabilities)
    pairs = {"forget_vs_test": ("forget", "forget_nonmembers"), "retain_vs_test": ("retain", "test")}
    tpr = np.zeros((len(models), len(COMPARISONS), len(ATTACK_SCORES), len(ROC_GRID)), np.float32)
    auc = np.zeros(tpr.shape[:3])
    low = np.zeros(tpr.shape[:3])
    for m, model in enumerate(models):
        for c, comparison in enumerate(COMPARISONS):
            members, nonmembers = pairs[comparison]
            curves = threshold_attacks(probabilities[model][members], labels[members],
                                       probabilities[model][nonmembers], labels[nonmembers])
            for s, name in enumerate(ATTACK_SCORES):
                tpr[m, c, s], auc[m, c, s], low[m, c, s] = curves[name].tpr, curves[name].auc, curves[name].tpr_at_1pct_fpr
    names = ATTACK_SCORES + ("classifier",)
    if "retrained" in probabilities and "unlearned" in probabilities:
        worst = distinguishability(probabilities["unlearned"]["forget"], probabilities["retrained"]["forget"],
                                   labels["forget"])
        distinguish, worst_auc, worst_name = worst.auc, worst.worst_case_auc, worst.worst_case_attack
    else:
        distinguish, worst_auc, worst_name = np.full(len(names), np.nan), float("nan"), ""
    return PrivacyAttacks(models=models, comparisons=COMPARISONS, scores=ATTACK_SCORES, fpr=ROC_GRID.astype(np.float32),
                          tpr=tpr, auc=auc, tpr_at_1pct_fpr=low, distinguish_attacks=names, distinguish_auc=distinguish,
                          worst_case_auc=worst_auc, worst_case_attack=worst_name, forget_nonmembers=forget_nonmembers,
                          sizes={key: int(len(value)) for key, value in labels.items()})
