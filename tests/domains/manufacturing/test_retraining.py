"""Retraining the machine-failure model on AI4I with maintenance outcomes from core's labels:
confirmed outcomes keep it promoted, flipped ones are refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from verticals.core.db import session_scope
from verticals.core.labeling.retrain import retrain
from verticals.core.labeling.store import annotate, enqueue
from verticals.core.registry.bundle import load_bundle_payloads
from verticals.core.registry.store import production_version

DATA = Path(__file__).resolve().parents[3].parent / "shared/data/ai4i2020/ai4i2020.csv"
pytestmark = pytest.mark.skipif(not DATA.is_file(), reason="needs ../shared/data/ai4i2020")


def _outcomes(rows: pd.DataFrame, flip: bool) -> None:
    with session_scope() as session:
        for udi, failed in zip(rows["UDI"], rows["Machine failure"], strict=True):
            item = enqueue(
                session,
                tenant="default",
                domain="manufacturing",
                model="failure",
                subject=str(udi),
                priority=0.0,
            )
            value = (1 - int(failed)) if flip else int(failed)
            annotate(session, item, "failure" if value else "ok", labeller="maintenance")


def test_parse_outcome():
    from verticals.domains.manufacturing.retraining import parse_outcome

    assert [parse_outcome(x) for x in ("1", "Failure", " ok ", "0", "maybe")] == [1, 1, 0, 0, None]


@pytest.mark.slow  # three trainings of the shipped recipe (~1 min on two shared cores)
def test_failure_retrain_promotes_then_refuses_flipped_outcomes(db):
    from verticals.domains.manufacturing.retraining import FailureRetrainRecipe

    recipe = FailureRetrainRecipe(data=DATA, holdout_fraction=0.2)
    first = retrain(recipe)
    assert first.decision == "promoted", first.reason
    assert (first.lineage.data_window, first.lineage.holdout_window) == (
        "UDI 1..8000",
        "UDI 8001..10000",
    )
    assert first.compressed is None  # no compression target for this model
    with session_scope() as session:  # the bundle's parts were registered with it
        version = production_version(session, "manufacturing", "failure")
        assert set(load_bundle_payloads(session, version)) == {"xgb", "modes", "profile"}

    csv = pd.read_csv(DATA)
    newest = csv[(csv["UDI"] > 6000) & (csv["UDI"] <= 8000)]
    _outcomes(newest[newest["Machine failure"] == 1], flip=False)
    normal = retrain(recipe)
    assert normal.decision == "promoted", normal.reason
    assert normal.lineage.labels_used == int(newest["Machine failure"].sum())

    _outcomes(newest, flip=True)  # a second, wrong outcome for every failure; others flipped
    poisoned = retrain(recipe)
    assert poisoned.decision == "staged", poisoned.reason
    assert "worse than the champion" in poisoned.reason
    print(
        "\nAP on UDI 8001..10000:",
        {
            "first": first.challenger_metric,
            "normal": (normal.champion_metric, normal.challenger_metric),
            "poisoned": (poisoned.champion_metric, poisoned.challenger_metric),
        },
    )


def test_live_outcomes_join_after_the_file_and_are_judged_on_first(db):
    from verticals.domains.manufacturing.retraining import FailureRetrainRecipe

    reading = {
        "type": "L",
        "air_temperature_k": 300.0,
        "process_temperature_k": 309.0,
        "rotational_speed_rpm": 1300.0,
        "torque_nm": 65.0,
        "tool_wear_min": 220.0,
    }
    with session_scope() as session:
        for subject, payload, label in (
            (
                "press-1@20261203T100000.000000Z",
                {"asset_id": "press-1", "reading": reading},
                "failure",
            ),
            ("press-2@20261203T100500.000000Z", {"asset_id": "press-2", "reading": reading}, "ok"),
            ("17", None, "failure"),  # a run of the file: relabelled
            ("press-3@20261203T101000.000000Z", None, "ok"),  # no reading: counted only
        ):
            item = enqueue(
                session,
                tenant="default",
                domain="manufacturing",
                model="failure",
                subject=subject,
                priority=0.0,
                payload=payload,
            )
            annotate(session, item, label, labeller="planner")
    recipe = FailureRetrainRecipe(data=DATA, holdout_fraction=0.2)
    with session_scope() as session:
        training = recipe.build(session, "failure", None, None)
    detail = training.detail
    assert (detail["live_outcomes"], detail["live_outcomes_in_holdout"]) == (2, 2)
    assert detail["labels_unknown_run"] == 1 and training.labels_used == 1  # UDI 17
    assert training.holdout_window == "UDI 8003..10002"  # the live runs are the newest
    frame = training.data.frame
    assert frame["machine_failure"].iloc[-2:].tolist() == [1, 0]
    assert frame["machine_failure"].iloc[16] == 1
