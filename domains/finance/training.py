"""Training protocol: time-ordered selection, an unseen-month report, then the shipped fit.

Windows are counted back from the day after the file's last transaction (E)::

    report (test) window  [E - test_days, E)                 e.g. August
    validation window     [E - test_days - valid_days, ...)  e.g. July   <- selection happens here
    selection training    [start + burn_in, valid_start - gap)            (gap = label delay)
    report training       [start + burn_in, test_start - gap)
    shipped training      [start + burn_in, E)

Selection (feature set, depth) and early stopping (on average precision) use only the validation
window (never subsampled; training sets keep every fraud and ``genuine_fraction`` of the rest); the report window is scored once, with the selected configuration. Calibration (Platt on
the margin) is fitted on the validation window's predictions of the selected model.
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
from verticals.domains.finance.config import FeatureConfig
from verticals.domains.finance.data import LABEL, frame_features, timestamps
from verticals.domains.finance.features import (
    SECONDS_PER_DAY,
    feature_names,
    handbook_feature_names,
)
from verticals.domains.finance.metrics import brier_score, fraud_metrics
from verticals.domains.finance.model import FraudModel, ModelMeta, fit_platt

Log = Callable[[str], None]


class Protocol(BaseModel):
    burn_in_days: int = Field(7, ge=0)
    gap_days: int = Field(7, ge=0)
    valid_days: int = Field(31, ge=1)
    test_days: int = Field(31, ge=0)
    genuine_fraction: float = Field(
        0.3, gt=0, le=1, description="share of genuine rows kept in training sets (frauds: all)"
    )
    seed: int = 0


class Candidate(BaseModel):
    name: str
    features: Literal["all", "handbook"] = "all"
    params: XGBParams


def default_grid(nthread: int = 2) -> list[Candidate]:
    base = {
        "learning_rate": 0.2,
        "n_rounds": 300,
        "early_stopping_rounds": 20,
        "max_bin": 128,
        "nthread": nthread,
    }
    return [
        Candidate(name="handbook15-d6", features="handbook", params=XGBParams(max_depth=6, **base)),
        Candidate(name="all-d4", params=XGBParams(max_depth=4, **base)),
        Candidate(name="all-d6", params=XGBParams(max_depth=6, **base)),
    ]


def quick_grid(nthread: int = 2) -> list[Candidate]:
    """One small candidate, for tests and smoke runs."""
    params = XGBParams(max_depth=3, n_rounds=30, early_stopping_rounds=5, nthread=nthread)
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

    def summary(self) -> dict[str, Any]:
        return {
            "selected": self.selected,
            "candidates": self.candidates,
            "validation": self.validation,
            "report": self.report,
            "windows": self.windows,
            "seconds": self.seconds,
        }


def _day_str(day: int) -> str:
    return str(pd.Timestamp(day * SECONDS_PER_DAY, unit="s").date())


def _metrics(model: FraudModel, X: np.ndarray, y: np.ndarray, days: np.ndarray, cust: np.ndarray):
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
    log: Log = print,
    on_features: Callable[[int], None] | None = None,
) -> TrainingReport:
    """Run the protocol on a validated, labelled frame (see :mod:`data`)."""
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
    valid_start = test_start - protocol.valid_days
    sel_end = valid_start - protocol.gap_days
    if sel_end <= start:
        raise ValueError("the file is too short for the protocol's windows")
    windows = {
        "selection_train": f"{_day_str(start)}..{_day_str(sel_end - 1)}",
        "validation": f"{_day_str(valid_start)}..{_day_str(test_start - 1)}",
        "report_train": f"{_day_str(start)}..{_day_str(test_start - protocol.gap_days - 1)}",
        "report": f"{_day_str(test_start)}..{_day_str(end - 1)}" if protocol.test_days else "",
        "shipped_train": f"{_day_str(start)}..{_day_str(end - 1)}",
    }
    rng = np.random.default_rng(protocol.seed)
    kept = (y == 1) | (rng.random(len(y)) < protocol.genuine_fraction)  # training rows only
    tr = (days >= start) & (days < sel_end) & kept
    va = (days >= valid_start) & (days < test_start)

    def subset(kind: str) -> list[str]:
        return names if kind == "all" else handbook_feature_names(cfg)

    def cols(used: list[str]) -> list[int]:
        return [names.index(n) for n in used]

    results: dict[str, dict[str, float]] = {}
    fitted: dict[str, tuple[FraudModel, int]] = {}
    for cand in grid:
        used = subset(cand.features)
        c = cols(used)
        t0 = time.perf_counter()
        res = train_booster(
            X[tr][:, c], y[tr], cand.params, eval_set=(X[va][:, c], y[va]), feature_names=used
        )
        # keep only the trees up to the best iteration
        booster = res.booster[: res.best_iteration + 1]
        meta = ModelMeta(
            feature_names=names,
            used_features=used,
            feature_config=cfg.model_dump(mode="json"),
            params=cand.params.model_dump(mode="json"),
        )
        model = FraudModel(booster, meta)
        m = fraud_metrics(days[va], cust[va], y[va], model.margin(X[va]))
        m["best_iteration"] = float(res.best_iteration)
        m["seconds"] = time.perf_counter() - t0
        results[cand.name] = m
        fitted[cand.name] = (model, res.best_iteration)
        log(
            f"  {cand.name:14s} valid AP={m['average_precision']:.4f} "
            f"AUC={m['roc_auc']:.4f} CP@100={m['card_precision_at_100']:.4f} "
            f"rounds={res.best_iteration + 1} ({m['seconds']:.0f}s, {res.device})"
        )
    selected = max(results, key=lambda k: results[k]["average_precision"])
    best_model, best_iter = fitted[selected]
    cand = next(c for c in grid if c.name == selected)
    used = subset(cand.features)
    calibration = fit_platt(best_model.margin(X[va]), y[va])
    best_model.meta.calibration = calibration
    validation = _metrics(best_model, X[va], y[va], days[va], cust[va])
    validation_scores = pd.DataFrame(
        {
            "day": days[va] - days[va].min(),
            "amount": frame["TX_AMOUNT"].to_numpy()[va],
            "label": y[va],
            "probability": best_model.predict(X[va]),
        }
    )
    log(f"selected {selected} on validation ({windows['validation']}); calibration {calibration}")
    fixed = cand.params.model_copy(update={"n_rounds": best_iter + 1, "early_stopping_rounds": None})

    def fit(mask: np.ndarray) -> FraudModel:
        res = train_booster(X[mask][:, cols(used)], y[mask], fixed, feature_names=used)
        meta = best_model.meta.model_copy(deep=True)
        return FraudModel(res.booster, meta)

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
    t0 = time.perf_counter()
    final = fit((days >= start) & kept)
    seconds["final_fit"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - started
    return TrainingReport(
        model=final,
        selected=selected,
        candidates=results,
        validation=validation,
        report=report,
        windows=windows,
        seconds=seconds,
        validation_scores=validation_scores,
    )
