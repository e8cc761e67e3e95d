from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from verticals.core.errors import ModelUnavailable
from verticals.domains.manufacturing.model import ai4i
from verticals.domains.manufacturing.model.failure import (
    PAYLOAD_FILES,
    FailureModel,
    MachineReading,
    pack_boosters,
    unpack_boosters,
)

SHIPPED = Path(__file__).resolve().parents[4] / "shared_models/manufacturing/failure"
DATA = Path(__file__).resolve().parents[5] / "shared/data/ai4i2020/ai4i2020.csv"

NORMAL = MachineReading(
    type="M",
    air_temperature_k=298.1,
    process_temperature_k=308.6,
    rotational_speed_rpm=1551,
    torque_nm=42.8,
    tool_wear_min=0,
)
# temperature difference 7.9 K < 8.6 K and 1,290 rpm < 1,380 rpm: the HDF rule fires
HOT = MachineReading(
    type="L",
    air_temperature_k=302.0,
    process_temperature_k=309.9,
    rotational_speed_rpm=1290,
    torque_nm=55.0,
    tool_wear_min=50,
)


@pytest.fixture(scope="module")
def payloads() -> dict[str, bytes]:
    return {kind: (SHIPPED / name).read_bytes() for kind, name in PAYLOAD_FILES.items()}


@pytest.fixture(scope="module")
def model(payloads: dict[str, bytes]) -> FailureModel:
    return FailureModel.from_payloads(payloads)


def test_hdf_reading_lists_hdf_first_with_its_reason(model: FailureModel) -> None:
    [estimate] = model.score([HOT])
    assert estimate.failure_probability >= estimate.threshold
    first = estimate.likely_failure_modes[0]
    assert (first.code, first.name) == ("HDF", "heat dissipation")
    assert first.probability > 0.5
    assert "temperature difference 7.9 K below 8.6 K at 1,290 rpm" in first.reason


def test_normal_reading_is_low_with_no_modes(model: FailureModel) -> None:
    [estimate] = model.score([NORMAL])
    assert estimate.failure_probability < 0.05
    assert estimate.failure_probability < estimate.threshold
    assert estimate.likely_failure_modes == []


def test_power_and_overstrain_readings_name_their_modes(model: FailureModel) -> None:
    low_power = NORMAL.model_copy(update={"rotational_speed_rpm": 2800, "torque_nm": 10.0})
    strained = NORMAL.model_copy(
        update={"type": "L", "rotational_speed_rpm": 1300, "torque_nm": 60.0, "tool_wear_min": 210}
    )
    power, strain = model.score([low_power, strained])
    assert power.likely_failure_modes[0].code == "PWF"
    assert "below 3,500 W" in power.likely_failure_modes[0].reason
    assert strain.likely_failure_modes[0].code == "OSF"
    assert "12,600 min·Nm above the 11,000 min·Nm limit for type L" in (
        strain.likely_failure_modes[0].reason
    )


def test_reasons_are_the_largest_contributions(model: FailureModel) -> None:
    [estimate] = model.score([HOT])
    sizes = [abs(r.contribution) for r in estimate.reasons]
    assert 3 <= len(sizes) <= 5
    assert sizes == sorted(sizes, reverse=True)
    names = {r.feature for r in estimate.reasons}
    assert names <= set(model.profile.feature_names)
    assert "hdf_rule" in names
    by_name = {r.feature: r for r in estimate.reasons}
    assert by_name["hdf_rule"].value == 1.0
    assert by_name["hdf_rule"].contribution > 0


def test_batch_keeps_order_and_matches_single_scores(model: FailureModel) -> None:
    batch = model.score([NORMAL, HOT, NORMAL])
    assert [e.failure_probability for e in batch] == [
        model.score([r])[0].failure_probability for r in (NORMAL, HOT, NORMAL)
    ]
    assert model.score([]) == []


def test_a_thousand_readings_score_quickly(model: FailureModel) -> None:
    readings = [NORMAL, HOT] * 500
    model.score(readings[:10])
    started = time.perf_counter()
    estimates = model.score(readings)
    assert len(estimates) == 1000
    assert time.perf_counter() - started < 2.0  # ~0.1-0.3 s here; generous on a shared CPU


@pytest.mark.parametrize(
    "change",
    [
        {"type": "X"},
        {"air_temperature_k": float("nan")},
        {"process_temperature_k": float("inf")},
        {"air_temperature_k": 150.0},
        {"rotational_speed_rpm": -1.0},
        {"torque_nm": 501.0},
        {"tool_wear_min": 1001.0},
        {"udi": 3},
    ],
)
def test_reading_rejects_implausible_values(change: dict) -> None:
    with pytest.raises(ValidationError):
        MachineReading.model_validate({**NORMAL.model_dump(), **change})


def test_payloads_are_json_or_ubj_and_round_trip(model: FailureModel) -> None:
    payloads = model.to_payloads()
    assert set(payloads) == set(PAYLOAD_FILES)
    profile = json.loads(payloads["profile"])
    assert profile["threshold"] == model.threshold
    assert profile["feature_names"] == list(ai4i.FEATURE_COLUMNS)
    modes = unpack_boosters(payloads["modes"])
    assert set(modes) == {"TWF", "HDF", "PWF", "OSF"}
    assert all(m[:1] == b"{" for m in modes.values())  # each an XGBoost UBJ model
    assert payloads["xgb"][:1] == b"{"  # UBJ object marker, not a pickle
    again = FailureModel.from_payloads(payloads)
    readings = [NORMAL, HOT]
    if DATA.is_file():
        frame = ai4i.load_ai4i(DATA).iloc[:300]
        readings += [
            MachineReading(**row) for row in frame[list(ai4i.INPUT_COLUMNS)].to_dict("records")
        ]
    assert [e.model_dump() for e in again.score(readings)] == [
        e.model_dump() for e in model.score(readings)
    ]
    assert again.to_payloads() == payloads


def test_predict_frame_matches_score(model: FailureModel) -> None:
    import pandas as pd

    frame = pd.DataFrame([NORMAL.model_dump(), HOT.model_dump()])
    probabilities = model.predict_frame(frame)
    scored = [e.failure_probability for e in model.score([NORMAL, HOT])]
    np.testing.assert_allclose(probabilities, scored, rtol=1e-6)
    modes = model.mode_probabilities(frame)
    assert set(modes) == set(ai4i.MODE_COLUMNS)
    assert modes["HDF"][1] > 0.5 > modes["HDF"][0]


def test_missing_or_broken_payloads_make_the_model_unavailable(
    payloads: dict[str, bytes],
) -> None:
    with pytest.raises(ModelUnavailable, match="modes"):
        FailureModel.from_payloads({k: v for k, v in payloads.items() if k != "modes"})
    with pytest.raises(ModelUnavailable, match="xgb"):
        FailureModel.from_payloads({**payloads, "xgb": b"not a model"})
    with pytest.raises(ModelUnavailable, match="profile"):
        FailureModel.from_payloads({**payloads, "profile": b"{}"})
    with pytest.raises(ModelUnavailable, match="modes"):
        FailureModel.from_payloads({**payloads, "modes": b"[1, 2"})


def test_pack_boosters_round_trips_and_refuses_garbage() -> None:
    models = {"HDF": b"{abc}", "TWF": bytes(range(256)) * 3, "OSF": b""}
    packed = pack_boosters(models)
    assert packed[:1] == b"{" and packed[-1:] == b"}"
    assert unpack_boosters(packed) == models
    for bad in (b"", b"[1]", packed[:-5] + b"}", b"{i\x03HDF[$U#l\x7f\xff\xff\xffx}"):
        with pytest.raises(ValueError):
            unpack_boosters(bad)
