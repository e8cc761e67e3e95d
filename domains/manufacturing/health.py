"""An asset's health as the API answers it, from a model estimate and the planner's costs."""

from __future__ import annotations

from datetime import datetime

from verticals.domains.manufacturing.decision import machine_decision, turbofan_verdict
from verticals.domains.manufacturing.model.failure import FailureEstimate
from verticals.domains.manufacturing.model.rul import RulEstimate
from verticals.domains.manufacturing.schemas import HealthOut
from verticals.domains.manufacturing.settings import ManufacturingSettings
from verticals.domains.manufacturing.tables import AssetRow

NO_READINGS = "no readings yet: send cycles to /assets/{asset_id}/readings"
NOT_SCORED = "not scored yet: score it with /machines:score and its asset_id"


def turbofan_health(
    asset: AssetRow,
    last_cycle: int,
    estimate: RulEstimate,
    model_version: str,
    settings: ManufacturingSettings,
    at: datetime,
) -> HealthOut:
    verdict = turbofan_verdict(
        estimate.rul,
        estimate.rul_low,
        estimate.rul_high,
        estimate.interval_level,
        estimate.warnings,
        settings,
    )
    return HealthOut(
        asset_id=asset.asset_id,
        kind="turbofan",
        last_cycle=last_cycle,
        rul=estimate.rul,
        rul_low=estimate.rul_low,
        rul_high=estimate.rul_high,
        interval_level=estimate.interval_level,
        failure_probability=verdict.failure_probability,
        risk=verdict.risk,
        decision=verdict.decision,  # type: ignore[arg-type]
        top_sensors=estimate.top_sensors,
        warnings=estimate.warnings,
        model_version=model_version,
        updated_at=at,
    )


def machine_health(
    asset_id: str,
    estimate: FailureEstimate,
    model_version: str,
    settings: ManufacturingSettings,
    at: datetime,
) -> HealthOut:
    return HealthOut(
        asset_id=asset_id,
        kind="machine_tool",
        last_cycle=None,
        rul=None,
        rul_low=None,
        rul_high=None,
        interval_level=None,
        failure_probability=estimate.failure_probability,
        risk=min(1.0, max(0.0, estimate.failure_probability)),
        decision=machine_decision(estimate.failure_probability, estimate.threshold, settings),  # type: ignore[arg-type]
        top_sensors=[reason.feature for reason in estimate.reasons],
        warnings=[],
        model_version=model_version,
        updated_at=at,
    )


def unknown_health(asset: AssetRow) -> HealthOut:
    """An asset with nothing to estimate from yet: no decision, and a warning that says why."""
    return HealthOut(
        asset_id=asset.asset_id,
        kind=asset.kind,  # type: ignore[arg-type]
        last_cycle=None,
        rul=None,
        rul_low=None,
        rul_high=None,
        interval_level=None,
        failure_probability=None,
        risk=0.0,
        decision=None,
        top_sensors=[],
        warnings=[NO_READINGS if asset.kind == "turbofan" else NOT_SCORED],
        model_version=None,
        updated_at=None,
    )
