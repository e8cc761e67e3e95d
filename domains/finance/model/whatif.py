"""Threshold what-if on the validation window: alerts per day, precision, recall, cost.

Input rows (``validation_scores.parquet``): day, amount, label, probability, weight (genuine rows
are subsampled; ``weight`` restores the full window's counts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel
from verticals.domains.finance.settings import DecisionConfig


class WhatIf(BaseModel):
    threshold: float
    alerts_per_day: float
    precision: float
    recall: float
    cost: float
    cost_per_day: float
    missed_fraud_amount: float


def at_threshold(scores: pd.DataFrame, threshold: float, costs: DecisionConfig) -> WhatIf:
    """Alert (review) every transaction with probability >= threshold."""
    w = scores["weight"].to_numpy(dtype=np.float64)
    fraud = scores["label"].to_numpy() == 1
    flagged = scores["probability"].to_numpy() >= threshold
    n_days = max(1, int(scores["day"].nunique()))
    alerts = float(w[flagged].sum())
    caught = float(w[flagged & fraud].sum())
    missed_amount = float((scores["amount"].to_numpy() * w)[~flagged & fraud].sum())
    cost = missed_amount * costs.missed_fraud_cost_ratio + alerts * costs.review_cost
    return WhatIf(
        threshold=threshold,
        alerts_per_day=alerts / n_days,
        precision=caught / alerts if alerts else float("nan"),
        recall=caught / float(w[fraud].sum()) if fraud.any() else float("nan"),
        cost=cost,
        cost_per_day=cost / n_days,
        missed_fraud_amount=missed_amount,
    )


def pr_curve(scores: pd.DataFrame, points: int = 200) -> pd.DataFrame:
    """Weighted precision/recall for thresholds from high to low (columns: threshold,
    precision, recall)."""
    order = np.argsort(-scores["probability"].to_numpy(), kind="stable")
    p = scores["probability"].to_numpy()[order]
    w = scores["weight"].to_numpy(dtype=np.float64)[order]
    y = scores["label"].to_numpy()[order] == 1
    tp = np.cumsum(w * y)
    flagged = np.cumsum(w)
    total = tp[-1] if len(tp) else 0.0
    idx = np.unique(np.linspace(0, len(p) - 1, num=min(points, len(p))).astype(int))
    return pd.DataFrame(
        {
            "threshold": p[idx],
            "precision": tp[idx] / flagged[idx],
            "recall": tp[idx] / total if total else np.nan,
        }
    )
