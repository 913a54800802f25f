"""Multi-label metrics as the AudioSet papers report them: mAP, AUC and d'.

Per class c, over the N clips: average precision (the mean of the precision at each positive,
ranking clips by score, ties broken as scikit-learn does: all clips of one score at once) and
the area under the ROC curve (ties count one half). ``mAP`` is the macro mean of AP over the
classes with at least one positive; ``AUC`` the macro mean over classes with both a positive
and a negative; ``d' = sqrt(2) * Phi^-1(AUC)`` with Phi the standard normal CDF (Hershey et
al. 2017, "CNN architectures for large-scale audio classification").
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm, rankdata


def average_precision(targets: np.ndarray, scores: np.ndarray) -> float:
    """(N,) binary targets, (N,) scores -> AP; NaN when there is no positive.

    AP = sum over distinct score thresholds t (high to low) of (R_t - R_prev) * P_t: the
    step-wise area under the precision-recall curve, as scikit-learn's
    ``average_precision_score``.
    """
    targets = targets.astype(bool)
    positives = int(targets.sum())
    if positives == 0:
        return math.nan
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_targets = scores[order], targets[order]
    # The last index of each run of equal scores: every clip of one score counts at once.
    last = np.r_[np.nonzero(np.diff(sorted_scores))[0], len(sorted_scores) - 1]
    true_pos = np.cumsum(sorted_targets)[last]
    precision = true_pos / (last + 1)
    recall = true_pos / positives
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_auc(targets: np.ndarray, scores: np.ndarray) -> float:
    """(N,) binary targets, (N,) scores -> ROC AUC (Mann-Whitney U / (n_pos * n_neg));
    NaN unless there are positives and negatives."""
    targets = targets.astype(bool)
    n_pos = int(targets.sum())
    n_neg = len(targets) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(scores)  # average ranks: ties count one half
    u = ranks[targets].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def d_prime(auc: float) -> float:
    """The sensitivity index equivalent to an AUC: sqrt(2) * Phi^-1(AUC)."""
    return float(math.sqrt(2.0) * norm.ppf(auc))


def audioset_metrics(targets: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """(N, K) multi-hot targets and scores -> {"mAP", "auc", "dprime", "classes_scored"}."""
    if targets.shape != scores.shape or targets.ndim != 2:
        raise ValueError(
            f"targets {targets.shape} and scores {scores.shape} must both be (N, num_classes)"
        )
    aps = np.array(
        [average_precision(targets[:, c], scores[:, c]) for c in range(targets.shape[1])]
    )
    aucs = np.array([roc_auc(targets[:, c], scores[:, c]) for c in range(targets.shape[1])])
    if np.isnan(aps).all():
        raise ValueError("no class has a positive clip: mAP is undefined")
    auc = float(np.nanmean(aucs)) if not np.isnan(aucs).all() else math.nan
    return {
        "mAP": float(np.nanmean(aps)),
        "auc": auc,
        "dprime": d_prime(auc) if not math.isnan(auc) else math.nan,
        "classes_scored": float(np.count_nonzero(~np.isnan(aps))),
    }


def per_class_ap(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(K,) AP of each class (NaN for classes without a positive)."""
    return np.array(
        [average_precision(targets[:, c], scores[:, c]) for c in range(targets.shape[1])]
    )
