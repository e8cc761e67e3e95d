"""Binary metrics and the decision threshold.

Two cut-offs: :func:`choose_threshold` maximises plain accuracy, so it leans towards the
majority class of the data it is chosen on; :func:`choose_balanced_threshold` maximises
balanced accuracy (Youden's J = sensitivity + specificity - 1), which does not depend on the
class balance, so its accuracy holds when the share of positives changes (PneumoniaMNIST's
held-back patients are ~62% pneumonia against ~74% in train/val).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


def roc_auc(targets: np.ndarray, scores: np.ndarray) -> float:
    targets = np.asarray(targets).reshape(-1)
    if len(np.unique(targets)) < 2:
        return float("nan")
    return float(roc_auc_score(targets, np.asarray(scores).reshape(-1)))


def accuracy(targets: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> float:
    targets = np.asarray(targets).reshape(-1)
    return float(np.mean((np.asarray(scores).reshape(-1) >= threshold) == (targets > 0.5)))


def choose_threshold(targets: np.ndarray, scores: np.ndarray) -> float:
    """The probability cut-off with the best accuracy (ties: closest to 0.5)."""
    scores = np.asarray(scores).reshape(-1)
    candidates = np.unique(np.concatenate([scores, [0.5]]))
    mids = np.concatenate([(candidates[:-1] + candidates[1:]) / 2, [0.5]])
    accs = np.array([accuracy(targets, scores, t) for t in mids])
    best = np.flatnonzero(accs >= accs.max() - 1e-12)
    return float(mids[best[np.argmin(np.abs(mids[best] - 0.5))]])


def balanced_accuracy(targets: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> float:
    """Mean of sensitivity and specificity at ``threshold`` (nan when a class is missing)."""
    targets = np.asarray(targets).reshape(-1) > 0.5
    predicted = np.asarray(scores).reshape(-1) >= threshold
    if targets.all() or not targets.any():
        return float("nan")
    return float((predicted[targets].mean() + (~predicted[~targets]).mean()) / 2)


def choose_balanced_threshold(targets: np.ndarray, scores: np.ndarray) -> float:
    """The cut-off with the best balanced accuracy (Youden's J); ties: closest to 0.5.

    Candidates are the midpoints between consecutive distinct scores (and 0.5).
    """
    targets = np.asarray(targets).reshape(-1) > 0.5
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if targets.all() or not targets.any():
        raise ValueError("targets must contain both classes to choose a balanced threshold")
    candidates = np.unique(np.concatenate([scores, [0.5]]))
    mids = np.concatenate([(candidates[:-1] + candidates[1:]) / 2, [0.5]])
    # sensitivity and specificity at every cut-off at once (scores >= cut-off are positive)
    pos = np.sort(scores[targets])
    neg = np.sort(scores[~targets])
    sensitivity = 1.0 - np.searchsorted(pos, mids, side="left") / len(pos)
    specificity = np.searchsorted(neg, mids, side="left") / len(neg)
    score = sensitivity + specificity
    best = np.flatnonzero(score >= score.max() - 1e-12)
    return float(mids[best[np.argmin(np.abs(mids[best] - 0.5))]])


def binary_metrics(outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Trainer hook: ``outputs`` are logits ``[N, 1]``; targets 0/1 ``[N, 1]``."""
    probs = 1.0 / (1.0 + np.exp(-np.asarray(outputs, dtype=np.float64).reshape(-1)))
    return {"val_roc_auc": roc_auc(targets, probs), "val_accuracy": accuracy(targets, probs)}
