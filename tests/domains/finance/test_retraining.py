"""Retraining the fraud model on real data (a customer subsample of the handbook file): a
normal retrain is promoted (or ties, going to the newer), a retrain on poisoned analyst
labels is refused with the reason, and the challenger never trains on the held-back slice."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert
from verticals.core.db import session_scope
from verticals.core.labeling.retrain import retrain
from verticals.core.registry.store import get_version, production_version

DATA = (
    Path(__file__).resolve().parents[3].parent
    / "shared/data/fraud-handbook/transactions_2018-04_2018-08.parquet"
)
pytestmark = pytest.mark.skipif(not DATA.is_file(), reason="needs ../shared/data/fraud-handbook")

CUSTOMERS = 300


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """June-August of a few hundred customers (the burn-in included), as a Parquet file."""
    frame = pd.read_parquet(DATA, filters=[("TX_DATETIME", ">=", pd.Timestamp("2018-05-25"))])
    rng = np.random.default_rng(0)
    keep = rng.choice(frame["CUSTOMER_ID"].unique(), CUSTOMERS, replace=False)
    out = tmp_path_factory.mktemp("finance") / "sample.parquet"
    frame[frame["CUSTOMER_ID"].isin(keep)].to_parquet(out, index=False)
    return out


def _recipe(sample: Path):
    from verticals.domains.finance.retraining import FinanceRetrainRecipe

    return FinanceRetrainRecipe(
        data=sample, holdout_days=21, gap_days=7, valid_days=14, grid="quick", nthread=1
    )


def _label(rows: pd.DataFrame, labels: np.ndarray) -> None:
    """Analyst labels on these transactions, as the review path leaves them."""
    now = datetime.now(UTC)
    values = [
        {
            "tenant": "default",
            "transaction_id": str(tx),
            "tx_datetime": when.to_pydatetime(),
            "ts": int(when.timestamp()),
            "customer_id": str(cust),
            "terminal_id": str(term),
            "amount": float(amount),
            "fraud_probability": 0.5,
            "decision": "review",
            "model_version": "test",
            "input_sha256": hashlib.sha256(str(tx).encode()).hexdigest(),
            "features": [],
            "response": {},
            "label": bool(y),
            "created_at": now,
        }
        for tx, when, cust, term, amount, y in zip(
            rows["TRANSACTION_ID"],
            rows["TX_DATETIME"],
            rows["CUSTOMER_ID"],
            rows["TERMINAL_ID"],
            rows["TX_AMOUNT"],
            labels,
            strict=True,
        )
    ]
    from verticals.domains.finance.tables import TransactionRow

    with session_scope() as session:
        session.execute(insert(TransactionRow), values)


@pytest.mark.slow  # three retrains (~45 s on two shared cores)
def test_retrain_promotes_then_refuses_poisoned_labels(db, sample):
    recipe = _recipe(sample)
    first = retrain(recipe)  # no production model yet
    assert first.decision == "promoted", first.reason
    assert first.lineage.holdout_window == "2018-08-11..2018-08-31"
    assert first.lineage.data_window.endswith("..2018-08-03")  # gap before the slice
    assert first.compressed is not None and first.compressed.within_tolerance

    frame = pd.read_parquet(sample)
    newest = frame[(frame["TX_DATETIME"] >= "2018-07-20") & (frame["TX_DATETIME"] < "2018-08-04")]
    _label(newest, newest["TX_FRAUD"].to_numpy())  # analysts confirm what happened
    normal = retrain(recipe)
    assert normal.lineage.labels_used == len(newest)
    assert normal.lineage.parent_version == first.challenger_version
    assert normal.decision == "promoted", normal.reason
    assert normal.challenger_metric >= normal.champion_metric

    # analysts (or an attacker) flip every label of the newest training weeks
    with session_scope() as session:
        from sqlalchemy import update
        from verticals.domains.finance.tables import TransactionRow

        session.execute(update(TransactionRow).values(label=~TransactionRow.label))
    poisoned = retrain(recipe)
    assert poisoned.decision == "staged"
    assert "worse than the champion" in poisoned.reason
    assert poisoned.challenger_metric < poisoned.champion_metric
    with session_scope() as session:
        assert production_version(session, "finance", "card-fraud-xgb").version == (
            normal.challenger_version
        )
        staged = get_version(session, "finance", "card-fraud-xgb", poisoned.challenger_version)
    assert staged.stage == "staging"
    assert staged.extra["retrain"]["reason"] == poisoned.reason
    assert staged.extra["lineage"]["labels_used"] == len(newest)
    print(
        "\nAP on the held-back slice:",
        {
            "first": first.challenger_metric,
            "normal": (normal.champion_metric, normal.challenger_metric),
            "poisoned": (poisoned.champion_metric, poisoned.challenger_metric),
        },
    )


@pytest.mark.slow  # reads the handbook file and computes its features (~20 s)
def test_the_held_back_slice_is_never_trained_on(db, sample):
    recipe = _recipe(sample)
    with session_scope() as session:
        training = recipe.build(session, "card-fraud-xgb", None, None)
    data = training.data
    assert data.days[data.train].max() < data.days[data.holdout].min() - 7
    assert training.n_holdout == int(data.holdout.sum()) > 0
    assert training.detail["frauds_holdout"] > 0


def test_a_champion_fitted_into_the_slice_is_flagged():
    from types import SimpleNamespace

    from verticals.core.labeling.retrain import TrainingSet
    from verticals.domains.finance.retraining import FinanceRetrainRecipe

    training = TrainingSet(None, "2018-04-01..2018-07-24", "2018-08-01..2018-08-31", 1, 1, 0)
    shipped = SimpleNamespace(
        extra={"source": "shipped"},
        card=SimpleNamespace(training_data="x.parquet; shipped fit on 2018-04-08..2018-08-31"),
    )
    (note,) = FinanceRetrainRecipe().champion_notes(shipped, training)
    assert "2018-04-08..2018-08-31" in note and "in-sample" in note
    retrained = SimpleNamespace(
        extra={"lineage": {"data_window": "2018-04-01..2018-07-24"}},
        card=SimpleNamespace(training_data="shipped fit on 2018-04-08..2018-08-31"),
    )
    assert FinanceRetrainRecipe().champion_notes(retrained, training) == []
