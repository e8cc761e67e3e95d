"""Training protocol: rolling-backtest selection, an unseen-window report, then the shipped fit.

Windows are counted back from the day after the file's last transaction (E)::

    report (test) window   [E - test_days, E)                        e.g. August
    selection folds        the ``selection_folds`` windows of ``valid_days`` before it,
                           e.g. June and July, each trained from the burn-in up to ``gap_days``
                           before it (see :mod:`backtest`)           <- selection happens here
    report training        [start + burn_in, test_start - gap)
    shipped training       [start + burn_in, E)

Selection (feature set, depth, number of rounds) uses only the mean average precision over the
selection folds; the report window is scored once, with the selected configuration. Calibration
(Platt on the margin) is fitted on the last selection fold's predictions of the selected model.
``verticals backtest finance`` runs the same folds over calendar months of the caller's choice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from verticals.core.training.xgb import XGBParams, train_booster
from verticals.domains.finance.model.backtest import (
    Fold,
    day_str,
    log_result,
    make_fold,
    month_window,
    run_folds,
)
from verticals.domains.finance.model.data import LABEL, frame_features, timestamps
from verticals.domains.finance.model.features import (
    SECONDS_PER_DAY,
    feature_names,
    handbook_feature_names,
    previous_feature_names,
)
from verticals.domains.finance.model.fraud_model import FraudModel, ModelMeta, fit_platt
from verticals.domains.finance.model.metrics import brier_score, fraud_metrics
from verticals.domains.finance.settings import FeatureConfig

Log = Callable[[str], None]


class Protocol(BaseModel):
    burn_in_days: int = Field(7, ge=0)
    gap_days: int = Field(7, ge=0)
    valid_days: int = Field(31, ge=1)
    test_days: int = Field(31, ge=0)
    selection_folds: int = Field(2, ge=1, description="validation windows before the report")
    genuine_fraction: float = Field(
        0.3, gt=0, le=1, description="share of genuine rows kept in training sets (frauds: all)"
    )
    seed: int = 0


FeatureSet = Literal["all", "handbook", "previous", "compact"]
# measured on the June/July folds (docs/finance.md): without these two the mean is the same
COMPACT_DROPS = ("cust_frauds_14d", "cust_hours_since_prev")
# histogram bins of the fine candidates (learning rate 0.1): measured on the selection folds
FINE_BINS = (1024, 4096)


def feature_subset(kind: FeatureSet, cfg: FeatureConfig) -> list[str]:
    """``all`` features, the ``handbook``'s 15, the ``previous`` model's 19, or ``compact``
    (all but the behaviour features the backtest found no use for)."""
    if kind == "handbook":
        return handbook_feature_names(cfg)
    if kind == "previous":
        return previous_feature_names(cfg)
    names = feature_names(cfg)
    if kind == "compact":
        return [n for n in names if n not in COMPACT_DROPS]
    return names


class Candidate(BaseModel):
    name: str
    features: FeatureSet = "all"
    params: XGBParams


def default_grid(nthread: int = 2) -> list[Candidate]:
    base = {
        "learning_rate": 0.2,
        "n_rounds": 300,
        "early_stopping_rounds": None,
        "max_bin": 128,
        "nthread": nthread,
    }
    return [
        Candidate(name="previous19-d4", features="previous", params=XGBParams(max_depth=4, **base)),
        Candidate(name="all-d4", params=XGBParams(max_depth=4, **base)),
        Candidate(name="compact-d4", features="compact", params=XGBParams(max_depth=4, **base)),
        Candidate(name="compact-d6", features="compact", params=XGBParams(max_depth=6, **base)),
        Candidate(
            name="compact-d4-full",  # every row and column per tree
            features="compact",
            params=XGBParams(max_depth=4, subsample=1.0, colsample_bytree=1.0, **base),
        ),
        Candidate(
            name="all-d4-full",
            params=XGBParams(max_depth=4, subsample=1.0, colsample_bytree=1.0, **base),
        ),
        # finer histograms (more cut points per feature) at learning rate 0.1: docs/finance.md
        *(
            Candidate(
                name=f"compact-d4-bins{bins}",
                features="compact",
                params=XGBParams(
                    max_depth=4,
                    subsample=1.0,
                    colsample_bytree=1.0,
                    **{**base, "learning_rate": 0.1, "max_bin": bins},
                ),
            )
            for bins in FINE_BINS
        ),
    ]


def quick_grid(nthread: int = 2) -> list[Candidate]:
    """One small candidate, for tests and smoke runs."""
    params = XGBParams(max_depth=3, n_rounds=30, early_stopping_rounds=None, nthread=nthread)
    return [Candidate(name="quick-d3", params=params)]


@dataclass
class TrainingReport:
    model: FraudModel
    selected: str
    candidates: dict[str, dict[str, float]]
    validation: dict[str, float]
    report: dict[str, float] | None
    windows: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)
    validation_scores: pd.DataFrame | None = None
    selection: dict[str, Any] = field(default_factory=dict)
    backtest: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "selected": self.selected,
            "candidates": self.candidates,
            "selection": self.selection,
            "backtest": self.backtest,
            "validation": self.validation,
            "report": self.report,
            "windows": self.windows,
            "seconds": self.seconds,
        }


def _public(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "boosters"}


def _metrics(
    model: FraudModel, X: np.ndarray, y: np.ndarray, days: np.ndarray, cust: np.ndarray
) -> dict[str, float]:
    p = model.predict(X)
    out = fraud_metrics(days, cust, y, p)
    out["brier"] = brier_score(y, p)
    return out


def train(
    frame: pd.DataFrame,
    *,
    cfg: FeatureConfig | None = None,
    protocol: Protocol | None = None,
    grid: list[Candidate] | None = None,
    features: np.ndarray | None = None,
    backtest_months: list[str] | None = None,
    log: Log = print,
    on_features: Callable[[int], None] | None = None,
) -> TrainingReport:
    """Run the protocol on a validated, labelled frame (see :mod:`data`); ``backtest_months``
    (e.g. June-August) are then backtested with the selected recipe, for the card only."""
    cfg = cfg or FeatureConfig()
    protocol = protocol or Protocol()
    grid = grid or default_grid()
    if LABEL not in frame.columns:
        raise ValueError(f"training needs the {LABEL} column")
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    X = features if features is not None else frame_features(frame, cfg, progress=on_features)
    seconds["features"] = time.perf_counter() - started
    y = frame[LABEL].to_numpy().astype(np.int64)
    days = timestamps(frame) // SECONDS_PER_DAY
    cust = frame["CUSTOMER_ID"].to_numpy()
    names = feature_names(cfg)
    first, end = int(days.min()), int(days.max()) + 1
    start = first + protocol.burn_in_days
    test_start = end - protocol.test_days
    k = protocol.selection_folds
    fold_starts = [test_start - (k - i) * protocol.valid_days for i in range(k)]
    if fold_starts[0] - protocol.gap_days <= start:
        raise ValueError("the file is too short for the protocol's windows")
    rng = np.random.default_rng(protocol.seed)
    kept = (y == 1) | (rng.random(len(y)) < protocol.genuine_fraction)  # training rows only
    folds = [
        make_fold(
            day_str(s0), days, kept, start=start, valid=(s0, s0 + protocol.valid_days),
            gap=protocol.gap_days,
        )
        for s0 in fold_starts
    ]
    last = folds[-1]
    windows = {
        "selection_folds": ", ".join(
            f"{f.windows['valid']} (trained {f.windows['train']})" for f in folds
        ),
        "validation": last.windows["valid"],
        "selection_train": last.windows["train"],
        "report_train": f"{day_str(start)}..{day_str(test_start - protocol.gap_days - 1)}",
        "report": f"{day_str(test_start)}..{day_str(end - 1)}" if protocol.test_days else "",
        "shipped_train": f"{day_str(start)}..{day_str(end - 1)}",
    }

    def cols(used: list[str]) -> list[int]:
        return [names.index(n) for n in used]

    log(f"selection folds: {windows['selection_folds']}")
    results: dict[str, dict[str, Any]] = {}
    for cand in grid:
        used = feature_subset(cand.features, cfg)
        res = run_folds(
            X, y, days, cust, cols(used), used, cand.params, folds, keep_boosters=True
        )
        results[cand.name] = res
        log_result(log, cand.name, res)
    selected = max(results, key=lambda n: results[n]["mean"]["average_precision"])
    best = results[selected]
    cand = next(c for c in grid if c.name == selected)
    used = feature_subset(cand.features, cfg)
    fixed = cand.params.model_copy(
        update={"n_rounds": best["rounds"], "early_stopping_rounds": None}
    )
    meta = ModelMeta(
        feature_names=names,
        used_features=used,
        feature_config=cfg.model_dump(mode="json"),
        params=fixed.model_dump(mode="json"),
    )
    va = last.valid
    fold_model = FraudModel(best["boosters"][last.name], meta)
    calibration = fit_platt(fold_model.margin(X[va]), y[va])
    meta.calibration = calibration
    validation = _metrics(fold_model, X[va], y[va], days[va], cust[va])
    validation_scores = pd.DataFrame(
        {
            "day": days[va] - days[va].min(),
            "amount": frame["TX_AMOUNT"].to_numpy()[va],
            "label": y[va],
            "probability": fold_model.predict(X[va]),
        }
    )
    log(
        f"selected {selected} ({best['rounds']} rounds) by the fold mean; "
        f"calibration on {windows['validation']}: {calibration}"
    )

    def fit(mask: np.ndarray) -> FraudModel:
        res = train_booster(X[mask][:, cols(used)], y[mask], fixed, feature_names=used)
        return FraudModel(res.booster, meta.model_copy(deep=True))

    report = None
    if protocol.test_days:
        t0 = time.perf_counter()
        te = days >= test_start
        rep_model = fit((days >= start) & (days < test_start - protocol.gap_days) & kept)
        report = _metrics(rep_model, X[te], y[te], days[te], cust[te])
        seconds["report_fit"] = time.perf_counter() - t0
        log(
            f"report ({windows['report']}, unseen): AP={report['average_precision']:.4f} "
            f"AUC={report['roc_auc']:.4f} CP@100={report['card_precision_at_100']:.4f} "
            f"Brier={report['brier']:.5f}"
        )
    backtest = None
    if backtest_months:
        t0 = time.perf_counter()
        month_folds = _month_folds(backtest_months, days, kept, start, protocol.gap_days)
        backtest = _public(
            run_folds(
                X, y, days, cust, cols(used), used, fixed, month_folds, rounds=[best["rounds"]]
            )
        )
        seconds["backtest"] = time.perf_counter() - t0
        log_result(log, f"backtest {selected}", backtest)
    t0 = time.perf_counter()
    final = fit((days >= start) & kept)
    seconds["final_fit"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - started
    return TrainingReport(
        model=final,
        selected=selected,
        candidates={n: {**r["mean"], "rounds": r["rounds"]} for n, r in results.items()},
        validation=validation,
        report=report,
        windows=windows,
        seconds=seconds,
        validation_scores=validation_scores,
        selection=_public(best),
        backtest=backtest,
    )


def _month_folds(
    months: list[str], days: np.ndarray, kept: np.ndarray, start: int, gap: int
) -> list[Fold]:
    return [
        make_fold(m, days, kept, start=start, valid=month_window(m), gap=gap) for m in months
    ]


def backtest_frame(
    frame: pd.DataFrame,
    months: list[str],
    *,
    cfg: FeatureConfig | None = None,
    protocol: Protocol | None = None,
    grid: list[Candidate] | None = None,
    features: np.ndarray | None = None,
    log: Log = print,
    on_features: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Every candidate over the month folds; the best by mean average precision first.

    Returns ``{"selected", "rounds", "folds": {month: metrics}, "mean", "std", "candidates"}``.
    """
    cfg = cfg or FeatureConfig()
    protocol = protocol or Protocol()
    grid = grid or default_grid()
    if LABEL not in frame.columns:
        raise ValueError(f"the backtest needs the {LABEL} column")
    if not months:
        raise ValueError("the backtest needs at least one fold")
    X = features if features is not None else frame_features(frame, cfg, progress=on_features)
    y = frame[LABEL].to_numpy().astype(np.int64)
    days = timestamps(frame) // SECONDS_PER_DAY
    cust = frame["CUSTOMER_ID"].to_numpy()
    names = feature_names(cfg)
    rng = np.random.default_rng(protocol.seed)
    kept = (y == 1) | (rng.random(len(y)) < protocol.genuine_fraction)
    start = int(days.min()) + protocol.burn_in_days
    folds = _month_folds(months, days, kept, start, protocol.gap_days)
    for f in folds:
        log(f"fold {f.name}: train {f.windows['train']}, validate {f.windows['valid']}")
    results = {}
    for cand in grid:
        used = feature_subset(cand.features, cfg)
        res = run_folds(X, y, days, cust, [names.index(n) for n in used], used, cand.params, folds)
        results[cand.name] = res
        log_result(log, cand.name, res)
    selected = max(results, key=lambda n: results[n]["mean"]["average_precision"])
    best = results[selected]
    return {
        "selected": selected,
        "rounds": best["rounds"],
        "folds": best["folds"],
        "mean": best["mean"],
        "std": best["std"],
        "candidates": {
            n: {"rounds": r["rounds"], "folds": r["folds"], "mean": r["mean"], "std": r["std"]}
            for n, r in results.items()
        },
    }
