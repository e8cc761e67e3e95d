"""RUL metrics (RMSE, the PHM08 NASA score) and the evaluation on a test file + its truth."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from verticals.core.errors import InvalidInput
from verticals.domains.manufacturing.model.cmapss import histories, read_cmapss, read_truth

if TYPE_CHECKING:
    from verticals.domains.manufacturing.model.rul import RulModel

EVALUATION_KEYS = (
    "rmse",
    "nasa_score",
    "coverage",
    "mean_interval_width",
    "interval_level",
    "n_units",
)


def rmse(predicted: np.ndarray, true: np.ndarray) -> float:
    d = np.asarray(predicted, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return float(np.sqrt(np.mean(d**2)))


def nasa_score(predicted: np.ndarray, true: np.ndarray) -> float:
    """Sum over engines of exp(-d/13)-1 for early (d<0) and exp(d/10)-1 for late predictions,
    d = predicted - true: late predictions cost more."""
    d = np.asarray(predicted, dtype=np.float64) - np.asarray(true, dtype=np.float64)
    return float(np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0)).sum())


def evaluate_rul(model: RulModel, data_file: Path, truth_file: Path) -> dict[str, float]:
    """The last cycle of each test unit against the true RUL (line i = i-th unit in the file)."""
    units, hs = histories(read_cmapss(Path(data_file)))
    truth = read_truth(Path(truth_file))
    if len(truth) != len(units):
        raise InvalidInput(
            f"{len(units)} units in the test file but {len(truth)} true RUL values",
            {"field": "truth"},
        )
    estimates = model.predict(hs)
    pred = np.array([e.rul for e in estimates])
    low = np.array([e.rul_low for e in estimates])
    high = np.array([e.rul_high for e in estimates])
    return {
        "rmse": rmse(pred, truth),
        "nasa_score": nasa_score(pred, truth),
        "coverage": float(np.mean((truth >= low) & (truth <= high))),
        "mean_interval_width": float(np.mean(high - low)),
        "interval_level": float(estimates[0].interval_level),
        "n_units": len(units),
    }
