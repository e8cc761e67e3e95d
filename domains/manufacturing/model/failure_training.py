"""Training and cross-validating the machine-failure model (the shipped recipe).

The recipe, one function used by both training and cross-validation:

1. features: the six inputs plus ``ai4i.DERIVED_COLUMNS`` (power, temperature difference, strain,
   margins to the generator's thresholds and its rules as 0/1 flags);
2. the decision threshold: out-of-fold predictions of ``INNER_FOLDS`` stratified folds *of the
   training rows*, the threshold maximizing F1 on them (grid 0.05..0.95);
3. the booster: XGBoost ``hist`` on all training rows, fixed rounds (``main_params``).

``train_failure`` adds one booster per learnable failure mode for the "likely modes" answer.
``cross_validate_failure`` runs the recipe inside each of ``folds`` stratified outer folds, so no
held-out row ever shapes the model or its threshold.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from verticals.core.training.xgb import XGBParams, train_booster
from verticals.domains.manufacturing.model import ai4i
from verticals.domains.manufacturing.model.failure import (
    LEARNED_MODES,
    FailureModel,
    FailureProfile,
)

INNER_FOLDS = 4
THRESHOLD_GRID = np.round(np.arange(0.05, 0.951, 0.01), 2)
NTHREAD = 1


def main_params(seed: int = 0) -> XGBParams:
    """The machine-failure booster: shallow trees, many small steps, CPU for determinism."""
    return XGBParams(
        max_depth=4,
        learning_rate=0.05,
        n_rounds=300,
        early_stopping_rounds=None,
        subsample=0.8,
        colsample_bytree=0.8,
        min_child_weight=1.0,
        eval_metric="aucpr",
        seed=seed,
        nthread=NTHREAD,
        device="cpu",
    )


def mode_params(seed: int = 0) -> XGBParams:
    """A failure mode's booster: its rule is a few thresholds, so smaller than the main one."""
    return main_params(seed).model_copy(
        update={"max_depth": 3, "learning_rate": 0.1, "n_rounds": 150}
    )


class FailureTrainReport(BaseModel):
    rows: int
    failures: int
    mode_positives: dict[str, int]
    features: list[str]
    threshold: float = Field(description="Chosen on inner out-of-fold predictions (max F1).")
    inner_folds: int
    inner_oof: dict[str, float] = Field(
        description="F1 (at the threshold), ROC AUC and average precision of the inner OOF."
    )
    params: dict[str, Any]
    mode_params: dict[str, Any]
    seed: int
    seconds: float
    xgboost_version: str


def choose_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """The grid threshold with the best F1 on (labels, scores), and that F1 (lowest on ties)."""
    f1s = [f1_score(labels, scores >= t, zero_division=0.0) for t in THRESHOLD_GRID]
    best = int(np.argmax(f1s))
    return float(THRESHOLD_GRID[best]), float(f1s[best])


def _fit(X: np.ndarray, y: np.ndarray, params: XGBParams) -> Any:
    return train_booster(X, y, params, feature_names=list(ai4i.FEATURE_COLUMNS)).booster


def _predict(booster: Any, X: np.ndarray) -> np.ndarray:
    import xgboost

    dmat = xgboost.DMatrix(X, feature_names=list(ai4i.FEATURE_COLUMNS), nthread=NTHREAD)
    return booster.predict(dmat).astype(np.float64)


def fit_recipe(X: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[Any, float, np.ndarray]:
    """The booster on all of (X, y), its threshold from inner OOF predictions, and those."""
    params = main_params(seed)
    oof = np.zeros(len(y))
    inner = StratifiedKFold(INNER_FOLDS, shuffle=True, random_state=seed)
    for fit_rows, held_rows in inner.split(X, y):
        oof[held_rows] = _predict(_fit(X[fit_rows], y[fit_rows], params), X[held_rows])
    threshold, _ = choose_threshold(y, oof)
    return _fit(X, y, params), threshold, oof


def _frame(csv: Path) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    frame = ai4i.load_ai4i(csv)
    X = ai4i.feature_matrix(frame)
    y = frame[ai4i.TARGET].to_numpy(dtype=np.int32)
    if y.sum() < 2 * INNER_FOLDS or (len(y) - y.sum()) < 2 * INNER_FOLDS:
        raise ValueError(f"too few failures or non-failures to train ({int(y.sum())} of {len(y)})")
    return frame, X, y


def train_failure(csv: Path, *, seed: int = 0) -> tuple[FailureModel, FailureTrainReport]:
    """The shipped model trained on the whole CSV with the recipe, plus mode boosters."""
    import xgboost

    started = time.perf_counter()
    frame, X, y = _frame(Path(csv))
    booster, threshold, oof = fit_recipe(X, y, seed)
    mode_boosters = {
        m: _fit(X, frame[m].to_numpy(dtype=np.int32), mode_params(seed)) for m in LEARNED_MODES
    }
    inner = {
        "f1": float(f1_score(y, oof >= threshold)),
        "roc_auc": float(roc_auc_score(y, oof)),
        "average_precision": float(average_precision_score(y, oof)),
    }
    params = main_params(seed).model_dump()
    profile = FailureProfile(
        feature_names=list(ai4i.FEATURE_COLUMNS),
        threshold=threshold,
        metrics={"inner_oof": inner},
        params=params,
    )
    model = FailureModel(booster, mode_boosters, profile, nthread=1)
    report = FailureTrainReport(
        rows=len(y),
        failures=int(y.sum()),
        mode_positives={m: int(frame[m].sum()) for m in ai4i.MODE_COLUMNS},
        features=list(ai4i.FEATURE_COLUMNS),
        threshold=threshold,
        inner_folds=INNER_FOLDS,
        inner_oof=inner,
        params=params,
        mode_params=mode_params(seed).model_dump(),
        seed=seed,
        seconds=round(time.perf_counter() - started, 2),
        xgboost_version=xgboost.__version__,
    )
    return model, report


def cross_validate_failure(csv: Path, *, folds: int = 5, seed: int = 0) -> dict:
    """Out-of-fold ``{"f1", "roc_auc", "average_precision", "n"}`` of the recipe: each outer
    fold's model and threshold come from its training rows only."""
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    _, X, y = _frame(Path(csv))
    scores = np.zeros(len(y))
    flagged = np.zeros(len(y), dtype=bool)
    outer = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for train_rows, held_rows in outer.split(X, y):
        booster, threshold, _ = fit_recipe(X[train_rows], y[train_rows], seed)
        scores[held_rows] = _predict(booster, X[held_rows])
        flagged[held_rows] = scores[held_rows] >= threshold
    return {
        "f1": float(f1_score(y, flagged)),
        "roc_auc": float(roc_auc_score(y, scores)),
        "average_precision": float(average_precision_score(y, scores)),
        "n": len(y),
    }
