"""Fraud metrics: ROC AUC, average precision, and the handbook's card precision@k."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score


def card_precision_at_k(
    days: np.ndarray, customers: np.ndarray, labels: np.ndarray, scores: np.ndarray, k: int = 100
) -> float:
    """The handbook's daily card precision@k, averaged over days.

    Per day, each card is scored by its highest transaction score that day and is fraudulent if
    any of its transactions that day is. The ``k`` top cards are alerts; precision is the share of
    them that are fraudulent. Cards caught on an earlier day (frauds among that day's top ``k``)
    are left out of later days.
    """
    frame = pd.DataFrame(
        {"day": days, "card": customers, "fraud": labels.astype(int), "score": scores}
    )
    per_card = frame.groupby(["day", "card"], sort=True).agg(
        score=("score", "max"), fraud=("fraud", "max")
    )
    caught: set[int] = set()
    precisions = []
    for _, group in per_card.groupby(level="day", sort=True):
        cards = group.index.get_level_values("card")
        group = group[~cards.isin(caught)]
        top = group.sort_values("score", ascending=False, kind="stable").head(k)
        frauds = top[top["fraud"] == 1]
        caught.update(frauds.index.get_level_values("card").tolist())
        precisions.append(len(frauds) / k)
    return float(np.mean(precisions)) if precisions else float("nan")


def fraud_metrics(
    days: np.ndarray, customers: np.ndarray, labels: np.ndarray, scores: np.ndarray
) -> dict[str, float]:
    """``roc_auc``, ``average_precision``, ``card_precision_at_100``, counts."""
    labels = np.asarray(labels).astype(int)
    both = 0 < labels.sum() < len(labels)
    return {
        "roc_auc": float(roc_auc_score(labels, scores)) if both else float("nan"),
        "average_precision": float(average_precision_score(labels, scores))
        if both
        else float("nan"),
        "card_precision_at_100": card_precision_at_k(days, customers, labels, scores, 100),
        "n_transactions": float(len(labels)),
        "n_frauds": float(labels.sum()),
    }


def brier_score(labels: np.ndarray, probabilities: np.ndarray) -> float:
    return float(np.mean((np.asarray(probabilities) - np.asarray(labels)) ** 2))
