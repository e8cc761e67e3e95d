"""Decisions from an interval and the planner's costs."""

from __future__ import annotations

import pytest
from verticals.domains.manufacturing.decision import machine_decision, turbofan_verdict
from verticals.domains.manufacturing.settings import ManufacturingSettings

SETTINGS = ManufacturingSettings(
    maintenance_lead_cycles=15, planned_maintenance_cost=1.0, unplanned_failure_cost=10.0
)


@pytest.mark.parametrize(
    ("rul", "width", "decision"),
    [(120, 40, "run"), (35, 40, "inspect"), (20, 40, "replace"), (5, 10, "replace")],
)
def test_turbofan_decisions_follow_the_interval(rul, width, decision):
    verdict = turbofan_verdict(rul, rul - width / 2, rul + width / 2, 0.9, [], SETTINGS)
    assert verdict.decision == decision


def test_a_wider_interval_means_more_risk_at_the_same_estimate():
    narrow = turbofan_verdict(40, 35, 45, 0.9, [], SETTINGS)
    wide = turbofan_verdict(40, 10, 70, 0.9, [], SETTINGS)
    assert wide.failure_probability > narrow.failure_probability
    assert 0 <= narrow.risk <= wide.risk <= 1


def test_a_warning_asks_for_an_inspection_of_a_healthy_looking_engine():
    verdict = turbofan_verdict(120, 100, 140, 0.9, ["unlike the training engines"], SETTINGS)
    assert verdict.decision == "inspect"


def test_costs_move_the_replacement_point():
    cheap_failures = SETTINGS.model_copy(update={"unplanned_failure_cost": 1.5})
    assert turbofan_verdict(30, 10, 50, 0.9, [], SETTINGS).decision == "replace"
    assert turbofan_verdict(30, 10, 50, 0.9, [], cheap_failures).decision != "replace"


def test_machine_decisions():
    assert machine_decision(0.9, 0.5, SETTINGS) == "stop"
    assert machine_decision(0.3, 0.5, SETTINGS) == "inspect"
    assert machine_decision(0.1, 0.5, SETTINGS) == "ok"


def test_a_failure_must_cost_more_than_a_planned_visit():
    with pytest.raises(ValueError, match="unplanned failure"):
        ManufacturingSettings(planned_maintenance_cost=5.0, unplanned_failure_cost=2.0)
