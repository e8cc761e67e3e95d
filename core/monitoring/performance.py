"""Performance from feedback: labels joined to predictions give precision, recall, average
precision and ROC AUC over the window; where labels lag, calibrated probabilities give an
expected precision and recall (confidence-based performance estimation) with a standard error."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (  # type: ignore[import-untyped]  # no stubs installed
    average_precision_score,
    roc_auc_score,
)
from sqlalchemy.orm import Session
from verticals.core.monitoring.spec import WatchedModel

THRESHOLD = 0.5


def labelled_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, Any]:
    labels = np.asarray(labels).astype(bool)
    flagged = np.asarray(scores) >= threshold
    out: dict[str, Any] = {"labelled": int(len(labels)), "positives": int(labels.sum())}
    tp = int(np.sum(flagged & labels))
    out["precision"] = tp / int(flagged.sum()) if flagged.any() else None
    out["recall"] = tp / int(labels.sum()) if labels.any() else None
    if 0 < labels.sum() < len(labels):
        out["average_precision"] = float(average_precision_score(labels, scores))
        out["roc_auc"] = float(roc_auc_score(labels, scores))
    return out


def estimated_metrics(scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Expected precision/recall at ``threshold`` if the probabilities are calibrated: each
    prediction is a Bernoulli(p); the standard errors are those of the sums."""
    p = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    flagged = p >= threshold
    out: dict[str, Any] = {"predictions": int(len(p)), "expected_positives": float(p.sum())}
    if flagged.any():
        tp = p[flagged]
        out["precision"] = float(tp.mean())
        out["precision_se"] = float(np.sqrt(np.sum(tp * (1 - tp))) / len(tp))
    if p.sum() > 0:
        out["recall"] = float(p[flagged].sum() / p.sum())
        out["recall_se"] = float(np.sqrt(np.sum(p * (1 - p))) / p.sum())
    return out


def performance_of(session: Session, watched: WatchedModel) -> dict[str, Any]:
    if watched.labels is None:
        return {}
    found = watched.labels(session, watched.window)
    out: dict[str, Any] = {"threshold": THRESHOLD}
    if len(found.labels):
        out["from_labels"] = labelled_metrics(found.scores, found.labels, THRESHOLD)
    if len(found.all_scores):
        out["estimated"] = estimated_metrics(found.all_scores, THRESHOLD)
    return out
