"""The finance learner for ``verticals label simulate finance`` (core/labeling/simulate).

Time order as in training (model/training.py): the evaluation window is the last calendar month of
the data (or the rows of ``--eval-data``, when given: its transactions are featurised after the
pool file's, in time order); the pool is every transaction from the end of the 7-day burn-in to
7 days (the label delay) before the evaluation window. Labels of the pool are hidden from the
booster until the strategy asks for them.

Features are the domain's own (features.py), computed once over the whole file in arrival order.
Their delayed windows (a terminal's fraud rate, a card's confirmed frauds) read every label that
is at least 7 days old, as in production, where chargebacks report frauds whether or not an
analyst reviewed the transaction; the simulation restricts only which rows the booster learns
from. Model: a small XGBoost (depth 3, 100 rounds, learning rate 0.1, one thread), the same for
every budget. Costs for the cost strategy: a missed fraud costs its amount (times
``missed_fraud_cost_ratio``), a false alarm ``review_cost`` (settings.DecisionConfig).
Headline metric: average precision; ROC AUC alongside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from verticals.core.errors import InvalidInput
from verticals.core.labeling.strategies import Costs, standardise

DATA_FILE = "shared/data/fraud-handbook/transactions_2018-04_2018-08.parquet"
BURN_IN_DAYS = 7
GAP_DAYS = 7
PARAMS = {
    "objective": "binary:logistic",
    "tree_method": "hist",
    "max_depth": 3,
    "learning_rate": 0.1,
    "max_bin": 128,
    # XGBoost's default (1, in hessian units) forbids every split of a few hundred rows with a
    # handful of frauds (each row weighs p(1-p) ~ 0.01), leaving a constant model
    "min_child_weight": 0.01,
    "nthread": 1,
    "verbosity": 0,
}
ROUNDS = 100


def default_data_file() -> Path:
    path = Path(__file__).resolve().parents[3] / DATA_FILE
    if not path.is_file():
        raise InvalidInput(f"no transactions at {path}; pass --data")
    return path


@dataclass
class FinanceLearner:
    pool_x: np.ndarray
    pool_y: np.ndarray
    pool_amount: np.ndarray
    eval_x: np.ndarray
    eval_y: np.ndarray
    windows: str
    review_cost: float
    missed_fraud_ratio: float
    metric: str = "average_precision"
    _dpool: Any = field(default=None, repr=False)
    _deval: Any = field(default=None, repr=False)
    _embedding: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_pool(self) -> int:
        return len(self.pool_y)

    def _pool_matrix(self) -> Any:
        import xgboost

        if self._dpool is None:
            self._dpool = xgboost.DMatrix(self.pool_x, nthread=1)
        return self._dpool

    def fit(self, indices: np.ndarray, labels: np.ndarray, seed: int) -> Any:
        import xgboost

        labels = np.asarray(labels, dtype=np.float64)
        if len(np.unique(labels)) < 2:  # one class seen: predict its base rate
            return float(labels.mean())
        train = xgboost.DMatrix(self.pool_x[indices], label=labels, nthread=1)
        return xgboost.train({**PARAMS, "seed": seed}, train, num_boost_round=ROUNDS)

    def predict_proba(self, model: Any, indices: np.ndarray) -> np.ndarray:
        if isinstance(model, float):
            return np.full(len(indices), model)
        p = model.predict(self._pool_matrix())
        return p if len(indices) == self.n_pool else p[indices]

    def embed(self, indices: np.ndarray) -> np.ndarray:
        if self._embedding is None:
            self._embedding = standardise(self.pool_x)
        return self._embedding[indices]

    def score(self, model: Any) -> dict[str, float]:
        import xgboost
        from sklearn.metrics import average_precision_score, roc_auc_score

        if isinstance(model, float):
            p = np.full(len(self.eval_y), model)
        else:
            if self._deval is None:
                self._deval = xgboost.DMatrix(self.eval_x, nthread=1)
            p = model.predict(self._deval)
        return {
            "average_precision": float(average_precision_score(self.eval_y, p)),
            "roc_auc": float(roc_auc_score(self.eval_y, p)),
        }

    def oracle(self, indices: np.ndarray) -> np.ndarray:
        return self.pool_y[indices]

    def costs(self) -> Costs:
        return Costs(self.pool_amount * self.missed_fraud_ratio, self.review_cost)

    def describe(self) -> str:
        return (
            f"finance: pool {self.n_pool:,} transactions ({int(self.pool_y.sum()):,} frauds), "
            f"evaluation {len(self.eval_y):,} ({int(self.eval_y.sum()):,} frauds); {self.windows}; "
            f"XGBoost depth {PARAMS['max_depth']}, {ROUNDS} rounds on {self.pool_x.shape[1]} "
            f"features; costs: amount x {self.missed_fraud_ratio:g} per missed fraud, "
            f"{self.review_cost:g} per false alarm; metric {self.metric}"
        )


def _day(frame: pd.DataFrame) -> np.ndarray:
    from verticals.domains.finance.model.data import timestamps
    from verticals.domains.finance.model.features import SECONDS_PER_DAY

    return timestamps(frame) // SECONDS_PER_DAY


def simulation_learner(
    task: str | None, data: Path | None, eval_data: Path | None
) -> FinanceLearner:
    """Pool and evaluation window from ``data`` (default: the shared handbook file) and, when
    given, ``eval_data`` (see the module)."""
    from verticals.domains.finance.model.backtest import day_str
    from verticals.domains.finance.model.data import (
        LABEL,
        frame_features,
        load_transactions,
        validate_frame,
    )
    from verticals.domains.finance.settings import DecisionConfig, FeatureConfig

    if task not in (None, "fraud"):
        raise InvalidInput(f"finance has one task, 'fraud', not {task!r}")
    frame = load_transactions(data or default_data_file())
    if eval_data is not None and (data is None or eval_data.resolve() != data.resolve()):
        held = load_transactions(eval_data)
        frame = validate_frame(pd.concat([frame, held], ignore_index=True))
        is_eval = frame["TRANSACTION_ID"].isin(held["TRANSACTION_ID"]).to_numpy()
    else:
        last = frame["TX_DATETIME"].iloc[-1]
        month_start = pd.Timestamp(last.year, last.month, 1)
        is_eval = (frame["TX_DATETIME"] >= month_start).to_numpy()
    if LABEL not in frame.columns:
        raise InvalidInput(f"the simulation needs labelled transactions ({LABEL})")
    days = _day(frame)
    eval_start = int(days[is_eval].min())
    pool = (~is_eval) & (days >= days.min() + BURN_IN_DAYS) & (days < eval_start - GAP_DAYS)
    if not pool.any() or not is_eval.any():
        raise InvalidInput("the data leaves no pool before the evaluation window")
    X = frame_features(frame, FeatureConfig())
    y = frame[LABEL].to_numpy().astype(np.int64)
    costs = DecisionConfig()
    windows = (
        f"pool {day_str(int(days[pool].min()))}..{day_str(int(days[pool].max()))}, "
        f"evaluation {day_str(eval_start)}..{day_str(int(days[is_eval].max()))}"
    )
    return FinanceLearner(
        pool_x=np.ascontiguousarray(X[pool]),
        pool_y=y[pool],
        pool_amount=frame["TX_AMOUNT"].to_numpy()[pool],
        eval_x=np.ascontiguousarray(X[is_eval]),
        eval_y=y[is_eval],
        windows=windows,
        review_cost=costs.review_cost,
        missed_fraud_ratio=costs.missed_fraud_cost_ratio,
    )
