"""RUL training: quick training learns, is deterministic; the full recipe meets its targets."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from verticals.domains.manufacturing.model.cmapss import histories, read_cmapss
from verticals.domains.manufacturing.model.rul_training import (
    cut_samples,
    split_units,
    train_rul,
)

CMAPSS = Path(__file__).resolve().parents[5] / "shared" / "data" / "cmapss"
pytestmark = pytest.mark.skipif(
    not (CMAPSS / "train_FD001.txt").is_file(), reason="C-MAPSS data absent"
)


def test_split_is_disjoint_and_seeded() -> None:
    units = list(range(1, 101))
    train, val, cal = split_units(units, seed=0)
    assert (len(train), len(val), len(cal)) == (60, 20, 20)
    assert sorted(train + val + cal) == units
    assert split_units(units, seed=0) == (train, val, cal)
    assert split_units(units, seed=1) != (train, val, cal)


def test_cuts_weigh_each_engine_once() -> None:
    z = [np.zeros((200, 3)), np.zeros((140, 3))]
    s = cut_samples(z)
    assert s.rul.min() >= 5 and s.rul.max() <= 150
    for u in (0, 1):
        assert s.weight[s.unit == u].sum() == pytest.approx(1.0)


def test_quick_training_learns(tmp_path: Path) -> None:
    cpu = time.process_time()
    model, report = train_rul(CMAPSS / "train_FD001.txt", seed=0, quick=True)
    # CPU seconds of this process (2 threads at most): < 20 s wall on an idle 2-core machine,
    # and not fooled by a busy shared one
    assert time.process_time() - cpu < 40
    assert report.engines.model_dump() == {"train": 60, "validation": 20, "calibration": 20}
    # predicting the mean capped RUL of the validation cuts scores far worse
    units, hs = histories(read_cmapss(CMAPSS / "train_FD001.txt"))
    by_unit = dict(zip(units, hs, strict=True))
    _, val_units, _ = split_units(units, seed=0)
    cuts = cut_samples([by_unit[u] for u in val_units])
    w = cuts.weight / cuts.weight.sum()
    baseline = float(np.sqrt((w * (cuts.rul - (w * np.minimum(cuts.rul, 125)).sum()) ** 2).sum()))
    assert report.validation["rmse"] < 0.6 * baseline
    assert 0.75 <= report.validation["coverage"] <= 1.0
    assert report.recipe in ("cnn", "xgb", "average")
    assert model.used_sensors == report.used_sensors and report.n_regimes == 1
    again, _ = train_rul(CMAPSS / "train_FD001.txt", seed=0, quick=True)
    assert again.to_payloads() == model.to_payloads()  # deterministic


@pytest.mark.slow
def test_full_training_meets_validation_targets() -> None:
    _, report = train_rul(CMAPSS / "train_FD001.txt", seed=0)
    assert report.validation["rmse"] <= 13.0
    assert report.validation["coverage"] >= 0.85
    assert report.validation["mean_interval_width"] <= 45
