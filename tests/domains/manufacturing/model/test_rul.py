"""RUL inference: intervals, payload round trip, OOD warnings, short histories, speed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from verticals.core.errors import InvalidInput, ModelUnavailable
from verticals.domains.manufacturing.model.cmapss import (
    READING_COLUMNS,
    histories,
    read_cmapss,
)
from verticals.domains.manufacturing.model.rul import RulModel

CMAPSS = Path(__file__).resolve().parents[5] / "shared" / "data" / "cmapss"
pytestmark = pytest.mark.skipif(
    not (CMAPSS / "train_FD001.txt").is_file(), reason="C-MAPSS data absent"
)


@pytest.fixture(scope="module")
def model() -> RulModel:
    from verticals.domains.manufacturing.model.rul_training import train_rul

    trained, _ = train_rul(CMAPSS / "train_FD001.txt", seed=0, quick=True)
    return trained


@pytest.fixture(scope="module")
def train_histories() -> list[np.ndarray]:
    return histories(read_cmapss(CMAPSS / "train_FD001.txt"))[1]


@pytest.fixture(scope="module")
def test_histories() -> list[np.ndarray]:
    return histories(read_cmapss(CMAPSS / "test_FD001.txt"))[1]


def test_estimates_hold_their_interval(model: RulModel, test_histories: list[np.ndarray]) -> None:
    estimates = model.predict(test_histories[:20])
    assert len(estimates) == 20
    for e in estimates:
        assert 0 <= e.rul_low <= e.rul <= e.rul_high
        assert e.rul <= 125 and e.interval_level == 0.9
        assert len(e.top_sensors) == 3 and set(e.top_sensors) <= set(model.used_sensors)
    assert model.predict([]) == []


def test_used_sensors_drop_constant_ones(
    model: RulModel, train_histories: list[np.ndarray]
) -> None:
    used = model.used_sensors
    for constant in ("sensor_1", "sensor_5", "sensor_10", "sensor_16", "sensor_18", "sensor_19"):
        assert constant not in used
    assert "sensor_11" in used and all(s.startswith("sensor_") for s in used)
    z = model.sensor_zscores(train_histories[0])
    assert z.shape == (len(train_histories[0]), len(used))
    assert np.isfinite(z).all() and np.abs(z.mean()) < 2


def test_payload_round_trip_is_identical(model: RulModel, test_histories: list[np.ndarray]) -> None:
    payloads = model.to_payloads()
    assert set(payloads) <= {"weights", "xgb", "profile"} and "profile" in payloads
    profile = json.loads(payloads["profile"])  # plain JSON, no pickle anywhere
    assert profile["window"] == model.window
    again = RulModel.from_payloads(payloads)
    first = model.predict(test_histories[:10])
    second = again.predict(test_histories[:10])
    assert [e.model_dump() for e in first] == [e.model_dump() for e in second]
    with pytest.raises(ModelUnavailable):
        RulModel.from_payloads({k: v for k, v in payloads.items() if k != "profile"})


def test_no_ood_warning_on_training_engines(
    model: RulModel, train_histories: list[np.ndarray]
) -> None:
    # whole lives (up to failure) and truncated ones
    cases = train_histories[:30] + [h[: len(h) // 2] for h in train_histories[30:60]]
    estimates = model.predict(cases)
    flagged = [e.warnings for e in estimates if e.warnings]
    assert flagged == []
    assert max(e.ood_score for e in estimates) <= 1


def test_shifted_operating_settings_are_flagged(
    model: RulModel, train_histories: list[np.ndarray]
) -> None:
    shifted = []
    for h in train_histories[:5]:
        s = h.copy()
        s[:, 0] += 20.0  # altitude (kft): another operating condition
        s[:, 1] += 0.25  # Mach
        shifted.append(s)
    for e in model.predict(shifted):
        assert e.ood_score > 1
        assert any("operating settings outside the training regimes" in w for w in e.warnings)


def test_reversed_sensor_trends_are_flagged(
    model: RulModel, train_histories: list[np.ndarray]
) -> None:
    """Another fault mode: some sensors drift the other way as the engine degrades."""
    used = [READING_COLUMNS.index(s) for s in model.used_sensors]
    flipped = []
    for h in train_histories[:10]:
        f = h.copy()
        start = f[:20, used[::2]].mean(axis=0)
        f[:, used[::2]] = 2 * start - f[:, used[::2]]  # reflect the drift of every other sensor
        flipped.append(f)
    estimates = model.predict(flipped)
    assert all(any("sensor trends unlike" in w for w in e.warnings) for e in estimates)


def test_short_history_is_padded_and_widened(
    model: RulModel, train_histories: list[np.ndarray]
) -> None:
    short, full = model.predict([train_histories[0][:12], train_histories[0][:60]])
    assert any("only 12 cycles of history" in w for w in short.warnings)
    assert not full.warnings
    assert short.rul_high - short.rul_low > 0


def test_bad_history_shape_is_refused(model: RulModel) -> None:
    with pytest.raises(InvalidInput, match="history 1"):
        model.predict([np.zeros((5, 24)), np.zeros((5, 23))])
    with pytest.raises(InvalidInput, match="non-finite"):
        model.predict([np.full((5, 24), np.nan)])


def test_hundred_engines_well_under_a_second(
    model: RulModel, test_histories: list[np.ndarray]
) -> None:
    model.predict(test_histories[:5])
    started = time.perf_counter()
    model.predict(test_histories)
    assert time.perf_counter() - started < 1.0


def test_regimes_found_and_normalised_per_regime() -> None:
    """Six-condition data (as FD002/FD004): one regime per setting cluster, z ~ N(0, 1) in each,
    sensors constant within every regime dropped."""
    from verticals.domains.manufacturing.model.rul import Normaliser

    rng = np.random.default_rng(0)
    conditions = np.array(
        [
            [0, 0, 100],
            [10, 0.25, 100],
            [20, 0.7, 100],
            [25, 0.62, 60],
            [35, 0.84, 100],
            [42, 0.84, 100],
        ]
    )
    rows = []
    for k, c in enumerate(conditions):
        x = np.zeros((400, 24))
        x[:, :3] = c + rng.normal(0, [0.003, 0.0003, 0], (400, 3))
        x[:, 3:] = 100 * k + rng.normal(0, 1 + k, (400, 21))  # offset and spread per regime
        x[:, 3] = 7.0 * k  # constant within each regime
        rows.append(x)
    readings = np.concatenate(rows)
    norm = Normaliser.fit(readings)
    assert len(norm.centers) == 6
    assert 3 not in norm.used and len(norm.used) == 20
    z = norm.transform(readings)
    regime, distance = norm.regimes(readings)
    assert (distance < 0.1).all()
    for k in range(6):
        assert np.abs(z[regime == k].mean(axis=0)).max() < 1e-6
        assert np.abs(z[regime == k].std(axis=0) - 1).max() < 1e-6
