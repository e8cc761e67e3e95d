"""Binary metrics and the decision threshold."""

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


def binary_metrics(outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Trainer hook: ``outputs`` are logits ``[N, 1]``; targets 0/1 ``[N, 1]``."""
    probs = 1.0 / (1.0 + np.exp(-np.asarray(outputs, dtype=np.float64).reshape(-1)))
    return {"val_roc_auc": roc_auc(targets, probs), "val_accuracy": accuracy(targets, probs)}
