from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from verticals.core.errors import InvalidInput
from verticals.domains.manufacturing.model.failure import MachineReading
from verticals.domains.manufacturing.model.failure_training import (
    THRESHOLD_GRID,
    choose_threshold,
    cross_validate_failure,
    train_failure,
)

DATA = Path(__file__).resolve().parents[5] / "shared/data/ai4i2020/ai4i2020.csv"
SHIPPED = Path(__file__).resolve().parents[4] / "shared_models/manufacturing/failure"
needs_data = pytest.mark.skipif(not DATA.is_file(), reason="AI4I 2020 data not present")


@pytest.fixture(scope="module")
def subsample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stratified 30% of the file (about 3,000 rows, 100 failures), in its own format."""
    raw = pd.read_csv(DATA, encoding="utf-8-sig")
    part = raw.groupby("Machine failure", group_keys=False).sample(frac=0.3, random_state=1)
    path = tmp_path_factory.mktemp("ai4i") / "subsample.csv"
    part.sort_values("UDI").to_csv(path, index=False)
    return path


@needs_data
def test_fast_cv_beats_the_trivial_baseline(subsample: Path) -> None:
    result = cross_validate_failure(subsample, folds=3, seed=0)
    assert set(result) == {"f1", "roc_auc", "average_precision", "n"}
    assert result["n"] == 3000
    rate = 102 / 3000
    trivial_f1 = 2 * rate / (1 + rate)  # flag every run: about 0.07
    assert result["f1"] > 0.7 > 10 * trivial_f1
    assert result["roc_auc"] > 0.93
    assert result["average_precision"] > 0.7


@needs_data
def test_train_failure_is_deterministic_and_reports(subsample: Path) -> None:
    model, report = train_failure(subsample, seed=0)
    again, _ = train_failure(subsample, seed=0)
    assert model.to_payloads() == again.to_payloads()
    assert report.rows == 3000
    assert report.failures == int(pd.read_csv(subsample)["Machine failure"].sum())
    assert report.threshold == model.threshold
    assert report.threshold in THRESHOLD_GRID
    assert report.inner_oof["f1"] > 0.7
    assert "UDI" not in report.features and "TWF" not in report.features
    [hot] = model.score(
        [
            MachineReading(
                type="L",
                air_temperature_k=302.0,
                process_temperature_k=309.9,
                rotational_speed_rpm=1290,
                torque_nm=55.0,
                tool_wear_min=50,
            )
        ]
    )
    assert hot.likely_failure_modes[0].code == "HDF"


def test_choose_threshold_maximizes_f1() -> None:
    labels = np.array([0, 0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.62, 0.7, 0.9])
    threshold, f1 = choose_threshold(labels, scores)
    assert 0.62 < threshold <= 0.7
    assert f1 == 1.0


def test_bad_csv_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("Type,Torque [Nm]\nL,40\n")
    with pytest.raises(InvalidInput, match="Air temperature"):
        train_failure(path)


@pytest.mark.slow
@needs_data
def test_full_five_fold_cv_meets_the_target_and_matches_the_report() -> None:
    result = cross_validate_failure(DATA, folds=5, seed=0)
    assert result["n"] == 10_000
    assert result["f1"] >= 0.85
    assert result["roc_auc"] > 0.97
    shipped = json.loads((SHIPPED / "report.json").read_text()).get("cv")
    if shipped is not None:  # written by `verticals train manufacturing --task failure --ship`
        for key in ("f1", "roc_auc", "average_precision"):
            assert shipped[key] == pytest.approx(result[key], abs=1e-9)
