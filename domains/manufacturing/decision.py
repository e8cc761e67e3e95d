"""From an estimate to what the planner should do: ``run`` / ``inspect`` / ``replace`` for a
turbofan, ``ok`` / ``inspect`` / ``stop`` for a machine tool.

A turbofan's RUL interval is read as a normal predictive distribution (its 90% interval spans
±1.645 σ around the estimate); the probability that the engine fails before a shop visit could
be arranged (``maintenance_lead_cycles``) prices running on. Replace when that expected
failure cost reaches a planned visit's, inspect from ``inspect_cost_ratio`` of it — and inspect
whenever the model warns that the engine looks unlike anything it was trained on.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from pydantic import BaseModel
from verticals.domains.manufacturing.settings import ManufacturingSettings

_STANDARD = NormalDist()
_MIN_SIGMA = 1.0  # cycles: a degenerate interval still carries some doubt


class TurbofanVerdict(BaseModel):
    decision: str
    failure_probability: float  # of failing within the lead time
    risk: float


def turbofan_verdict(
    rul: float,
    rul_low: float,
    rul_high: float,
    level: float,
    warnings: list[str],
    settings: ManufacturingSettings,
) -> TurbofanVerdict:
    z = _STANDARD.inv_cdf(0.5 + level / 2)
    sigma = max(_MIN_SIGMA, (rul_high - rul_low) / (2 * z))
    p_fail = _STANDARD.cdf((settings.maintenance_lead_cycles - rul) / sigma)
    expected_failure_cost = p_fail * settings.unplanned_failure_cost
    if expected_failure_cost >= settings.planned_maintenance_cost:
        decision = "replace"
    elif warnings or expected_failure_cost >= (
        settings.inspect_cost_ratio * settings.planned_maintenance_cost
    ):
        decision = "inspect"
    else:
        decision = "run"
    return TurbofanVerdict(decision=decision, failure_probability=p_fail, risk=_clip(p_fail))


def machine_decision(probability: float, threshold: float, settings: ManufacturingSettings) -> str:
    if probability >= threshold:
        return "stop"
    if probability >= settings.machine_inspect_ratio * threshold:
        return "inspect"
    return "ok"


def _clip(value: float) -> float:
    return 0.0 if not math.isfinite(value) else min(1.0, max(0.0, value))
