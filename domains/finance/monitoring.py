"""What core's monitoring watches in finance: the card amount (input) and the fraud probability
(output) of the production model, read from ``finance_transactions`` (rows the scoring path
already writes), so scoring itself does no extra work.

Reference: the shipped validation sample (``validation_scores.parquet``: amount, calibrated
probability, label; genuine rows subsampled and weighted), expanded by its integer weights so
the reference has the validation month's true class mix.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session
from verticals.core.db.base import utcnow
from verticals.core.monitoring.spec import (
    Columns,
    Labelled,
    WatchedFeature,
    WatchedModel,
    WatchSpec,
    Window,
    WindowConfig,
)
from verticals.domains.finance.settings import MODEL_NAME
from verticals.domains.finance.tables import TransactionRow

FEATURES = (
    WatchedFeature("amount"),
    WatchedFeature("fraud_probability", output=True),
)


def reference_columns() -> Columns:
    from verticals.shared_models.finance import WHATIF_FILE

    frame = pd.read_parquet(WHATIF_FILE, columns=["amount", "probability", "weight"])
    repeat = np.rint(frame["weight"].to_numpy()).astype(np.int64).clip(min=1)
    return {
        "amount": np.repeat(frame["amount"].to_numpy(np.float64), repeat),
        "fraud_probability": np.repeat(frame["probability"].to_numpy(np.float64), repeat),
    }


def _newest(session: Session, config: WindowConfig, *columns: object) -> list:
    query = select(*columns, TransactionRow.created_at).order_by(TransactionRow.created_at.desc())
    if config.max_age_s is not None:
        query = query.where(
            TransactionRow.created_at >= utcnow() - timedelta(seconds=config.max_age_s)
        )
    return list(session.execute(query.limit(config.max_count)).all())[::-1]


def current_window(session: Session, config: WindowConfig) -> Window:
    rows = _newest(session, config, TransactionRow.amount, TransactionRow.fraud_probability)
    return Window(
        columns={
            "amount": np.array([r[0] for r in rows], dtype=np.float64),
            "fraud_probability": np.array([r[1] for r in rows], dtype=np.float64),
        },
        count=len(rows),
        start=rows[0][-1] if rows else None,
        end=rows[-1][-1] if rows else None,
    )


def labelled_window(session: Session, config: WindowConfig) -> Labelled:
    rows = _newest(session, config, TransactionRow.fraud_probability, TransactionRow.label)
    scores = np.array([r[0] for r in rows], dtype=np.float64)
    known = np.array([r[1] is not None for r in rows], dtype=bool)
    labels = np.array([bool(r[1]) for r in rows if r[1] is not None], dtype=bool)
    return Labelled(scores=scores[known], labels=labels, all_scores=scores)


def watch_spec() -> WatchSpec:
    return WatchSpec(
        models=(
            WatchedModel(
                model=MODEL_NAME,
                features=FEATURES,
                current=current_window,
                reference=reference_columns,
                labels=labelled_window,
                baseline=("average_precision",),
            ),
        )
    )
