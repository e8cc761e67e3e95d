"""Rolling backtest: the selection protocol of the finance model.

A fold validates on one window (a calendar month for ``verticals backtest finance``) and trains
on everything from the burn-in up to ``gap_days`` before it (the label delay: labels of the last
week before the window are not known when it starts)::

    fold M    train [start + burn_in, M_start - gap)    validate [M_start, M_end)

Each candidate (feature set, depth) is fitted once per fold with its largest round count; its
predictions are read at every ``ROUND_STEP`` rounds, and the fewest rounds whose mean average
precision over the folds is within ``ROUND_TOLERANCE`` of the best are the candidate's (serving
cost grows with the trees: every answer carries per-tree SHAP reasons). Candidates are compared by that mean; the
spread (standard deviation over folds) is reported next to it. Training sets keep every fraud
and ``genuine_fraction`` of the genuine rows; validation windows are never subsampled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from verticals.core.training.xgb import XGBParams, train_booster
from verticals.domains.finance.model.features import SECONDS_PER_DAY
from verticals.domains.finance.model.metrics import fraud_metrics

Log = Callable[[str], None]
ROUND_STEP = 25
ROUND_TOLERANCE = 0.001  # mean average precision
REPORTED = ("average_precision", "roc_auc", "card_precision_at_100")


@dataclass(frozen=True)
class Fold:
    name: str
    train: np.ndarray  # bool mask over rows
    valid: np.ndarray
    windows: dict[str, str]


def day_str(day: int) -> str:
    return str(pd.Timestamp(day * SECONDS_PER_DAY, unit="s").date())


def make_fold(
    name: str, days: np.ndarray, kept: np.ndarray, *, start: int, valid: tuple[int, int], gap: int
) -> Fold:
    """Validate on days ``valid`` = [first, end); train on [start, first - gap) ∩ ``kept``."""
    first, end = valid
    train_end = first - gap
    if train_end <= start:
        raise ValueError(f"fold {name}: no training days before {day_str(first)} (gap {gap})")
    va = (days >= first) & (days < end)
    if not va.any():
        raise ValueError(f"fold {name}: no transactions in {day_str(first)}..{day_str(end - 1)}")
    return Fold(
        name=name,
        train=(days >= start) & (days < train_end) & kept,
        valid=va,
        windows={
            "train": f"{day_str(start)}..{day_str(train_end - 1)}",
            "valid": f"{day_str(first)}..{day_str(end - 1)}",
        },
    )


def month_window(month: str) -> tuple[int, int]:
    """``YYYY-MM`` → [first day, first day of the next month) in days since 1970-01-01."""
    try:
        first = pd.Period(month, freq="M")
    except ValueError as exc:
        raise ValueError(f"fold {month!r} is not a month (YYYY-MM)") from exc
    if str(first) != month:
        raise ValueError(f"fold {month!r} is not a month (YYYY-MM)")
    begin = first.start_time.value // 10**9 // SECONDS_PER_DAY
    end = (first + 1).start_time.value // 10**9 // SECONDS_PER_DAY
    return int(begin), int(end)


def checkpoints(n_rounds: int) -> list[int]:
    return sorted({*range(ROUND_STEP, n_rounds + 1, ROUND_STEP), n_rounds})


def _spread(per_fold: dict[str, dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    mean = {k: float(np.mean([m[k] for m in per_fold.values()])) for k in REPORTED}
    std = {k: float(np.std([m[k] for m in per_fold.values()])) for k in REPORTED}
    return mean, std


def run_folds(
    X: np.ndarray,
    y: np.ndarray,
    days: np.ndarray,
    cards: np.ndarray,
    columns: list[int],
    used: list[str],
    params: XGBParams,
    folds: list[Fold],
    *,
    rounds: list[int] | None = None,
    keep_boosters: bool = False,
) -> dict[str, Any]:
    """One candidate over the folds: ``{"rounds", "folds": {name: metrics}, "mean", "std",
    "seconds"}`` at the fewest rounds (among ``rounds``, default every ``ROUND_STEP``) within
    ``ROUND_TOLERANCE`` of the best mean average precision; ``"boosters"`` (per fold, trimmed) when ``keep_boosters``."""
    import xgboost
    from sklearn.metrics import average_precision_score

    rounds = sorted(rounds or checkpoints(params.n_rounds))
    fixed = params.model_copy(update={"n_rounds": rounds[-1], "early_stopping_rounds": None})
    started = time.perf_counter()
    fitted = []
    curves = []
    for fold in folds:
        res = train_booster(X[fold.train][:, columns], y[fold.train], fixed, feature_names=used)
        dval = xgboost.DMatrix(X[fold.valid][:, columns], feature_names=used)
        yv = y[fold.valid]
        curves.append(
            [
                average_precision_score(yv, res.booster.predict(dval, iteration_range=(0, r)))
                for r in rounds
            ]
        )
        fitted.append((res.booster, dval))
    mean_curve = np.mean(curves, axis=0)
    # the fewest rounds within ROUND_TOLERANCE of the best mean: fewer trees answer faster
    # (reasons cost per tree), and smaller differences are below the folds' spread
    best = int(np.flatnonzero(mean_curve >= mean_curve.max() - ROUND_TOLERANCE)[0])
    r = rounds[best]
    per_fold = {}
    boosters = {}
    for fold, (booster, dval) in zip(folds, fitted, strict=True):
        margin = booster.predict(dval, iteration_range=(0, r), output_margin=True)
        m = fraud_metrics(days[fold.valid], cards[fold.valid], y[fold.valid], margin)
        per_fold[fold.name] = {k: m[k] for k in REPORTED}
        if keep_boosters:
            boosters[fold.name] = booster[:r]
    mean, std = _spread(per_fold)
    out: dict[str, Any] = {
        "rounds": r,
        "folds": per_fold,
        "mean": mean,
        "std": std,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if keep_boosters:
        out["boosters"] = boosters
    return out


def log_result(log: Log, name: str, result: dict[str, Any]) -> None:
    folds = " ".join(
        f"{k}:{v['average_precision']:.4f}" for k, v in result["folds"].items()
    )
    mean, std = result["mean"], result["std"]
    log(
        f"  {name:16s} mean AP={mean['average_precision']:.4f}±{std['average_precision']:.4f} "
        f"AUC={mean['roc_auc']:.4f} CP@100={mean['card_precision_at_100']:.4f} "
        f"rounds={result['rounds']} [{folds}] ({result['seconds']:.0f}s)"
    )
