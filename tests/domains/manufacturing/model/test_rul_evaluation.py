"""RUL metrics on hand-computed values, and the test-file evaluation's keys."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from verticals.core.errors import InvalidInput
from verticals.domains.manufacturing.model.rul_evaluation import (
    EVALUATION_KEYS,
    evaluate_rul,
    nasa_score,
    rmse,
)

CMAPSS = Path(__file__).resolve().parents[5] / "shared" / "data" / "cmapss"


def test_nasa_score_hand_computed() -> None:
    # d = -10 (early): exp(10/13) - 1 = 1.158106; d = +10 (late): e - 1 = 1.718282
    assert nasa_score(np.array([10.0, 20.0]), np.array([20.0, 10.0])) == pytest.approx(
        2.876387, abs=1e-6
    )
    assert nasa_score(np.array([5.0]), np.array([5.0])) == 0.0
    # late costs more than early by the same amount
    assert nasa_score(np.array([30.0]), np.array([20.0])) > nasa_score(
        np.array([10.0]), np.array([20.0])
    )
    assert nasa_score(np.array([33.0]), np.array([20.0])) == pytest.approx(math.exp(1.3) - 1)


def test_rmse() -> None:
    assert rmse(np.array([10.0, 20.0]), np.array([20.0, 10.0])) == 10.0
    assert rmse(np.array([3.0, 4.0]), np.array([0.0, 0.0])) == pytest.approx(math.sqrt(12.5))


class _Constant:
    """A stand-in model predicting 50 in [40, 60] for every engine."""

    def predict(self, histories: list[np.ndarray]) -> list[object]:
        from verticals.domains.manufacturing.model.rul import RulEstimate

        return [
            RulEstimate(
                rul=50,
                rul_low=40,
                rul_high=60,
                interval_level=0.9,
                top_sensors=[],
                warnings=[],
                ood_score=0,
            )
            for _ in histories
        ]


def _files(tmp_path: Path, truth: str) -> tuple[Path, Path]:
    rows = []
    for unit in (1, 2):
        for cycle in (1, 2, 3):
            rows.append(" ".join([str(unit), str(cycle)] + ["1"] * 24))
    data = tmp_path / "test.txt"
    data.write_text("\n".join(rows) + "\n")
    truth_file = tmp_path / "RUL.txt"
    truth_file.write_text(truth)
    return data, truth_file


def test_evaluate_rul_keys_and_values(tmp_path: Path) -> None:
    data, truth = _files(tmp_path, "55\n70\n")
    result = evaluate_rul(_Constant(), data, truth)  # type: ignore[arg-type]
    assert set(result) == set(EVALUATION_KEYS)
    assert result["n_units"] == 2 and result["interval_level"] == 0.9
    assert result["coverage"] == 0.5 and result["mean_interval_width"] == 20.0
    assert result["rmse"] == pytest.approx(math.sqrt((25 + 400) / 2))
    assert result["nasa_score"] == pytest.approx(math.exp(5 / 13) - 1 + math.exp(20 / 13) - 1)


def test_evaluate_rul_refuses_mismatched_truth(tmp_path: Path) -> None:
    data, truth = _files(tmp_path, "55\n")
    with pytest.raises(InvalidInput, match="2 units"):
        evaluate_rul(_Constant(), data, truth)  # type: ignore[arg-type]
