"""Offline evaluation and batch scoring of raw transaction files with a registered model."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from verticals.core.errors import InvalidInput
from verticals.domains.finance.model.data import (
    LABEL,
    frame_features,
    load_transactions,
    timestamps,
)
from verticals.domains.finance.model.features import SECONDS_PER_DAY
from verticals.domains.finance.model.fraud_model import FraudModel
from verticals.domains.finance.model.metrics import fraud_metrics

Progress = Callable[[int], None]
METRIC_KEYS = (
    "roc_auc",
    "average_precision",
    "card_precision_at_100",
    "n_transactions",
    "n_frauds",
)


def evaluate_frame(
    frame: pd.DataFrame,
    model: FraudModel,
    *,
    since: date | datetime | None = None,
    progress: Progress | None = None,
) -> dict[str, float]:
    """Features over the whole frame in time order (labels only after the delay), metrics over
    rows at or after ``since``."""
    if LABEL not in frame.columns:
        raise InvalidInput(f"evaluation needs the {LABEL} column", {"field": LABEL})
    X = frame_features(frame, model.feature_config, progress=progress)
    mask = np.ones(len(frame), dtype=bool)
    if since is not None:
        mask = frame["TX_DATETIME"].to_numpy() >= np.datetime64(pd.Timestamp(since), "s")
    if not mask.any():
        raise InvalidInput(f"no transactions at or after {since}", {"field": "from"})
    scores = model.predict(X[mask])
    days = timestamps(frame)[mask] // SECONDS_PER_DAY
    metrics = fraud_metrics(
        days, frame["CUSTOMER_ID"].to_numpy()[mask], frame[LABEL].to_numpy()[mask], scores
    )
    return {k: metrics[k] for k in METRIC_KEYS}


def evaluate_file(
    path: Path, model: FraudModel, *, since: date | datetime | None = None,
    progress: Progress | None = None,
) -> dict[str, float]:
    return evaluate_frame(load_transactions(path), model, since=since, progress=progress)


def score_frame(
    frame: pd.DataFrame, model: FraudModel, *, progress: Progress | None = None
) -> pd.DataFrame:
    """Probabilities for every row (features in time order; labels, if present, feed the
    delayed windows as they would online)."""
    X = frame_features(frame, model.feature_config, progress=progress)
    out = frame[["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"]].copy()
    out["fraud_probability"] = model.predict(X)
    return out
