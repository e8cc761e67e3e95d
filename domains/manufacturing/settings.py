"""The manufacturing domain's settings (env prefix ``VERTICALS_MANUFACTURING_``), read on first use."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ManufacturingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VERTICALS_MANUFACTURING_", extra="ignore")

    # -- turbofan decisions: the costs the planner weighs -----------------------------------
    maintenance_lead_cycles: int = Field(
        15, ge=0, le=1000, description="cycles a planned shop visit needs to be arranged"
    )
    planned_maintenance_cost: float = Field(
        1.0, gt=0, description="cost of a planned shop visit (any unit, relative)"
    )
    unplanned_failure_cost: float = Field(
        10.0, gt=0, description="cost of a failure in service, in the same unit"
    )
    inspect_cost_ratio: float = Field(
        0.25,
        gt=0,
        lt=1,
        description="inspect once the expected failure cost reaches this share of a planned visit",
    )
    # -- machine-tool decisions -------------------------------------------------------------
    machine_inspect_ratio: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="inspect a machine at this share of the model's stop threshold",
    )
    # -- limits -----------------------------------------------------------------------------
    max_readings_per_request: int = Field(
        5_000, gt=0, le=100_000, description="readings one POST may carry"
    )
    max_upload_bytes: int = Field(
        32 << 20, gt=0, description="largest C-MAPSS file `readings:upload` accepts"
    )
    max_assets_per_upload: int = Field(1_000, gt=0, description="units one upload may create")
    max_history_cycles: int = Field(
        2_000, gt=0, description="most recent cycles of an asset the models and page look at"
    )
    fleet_page_size: int = Field(100, gt=0, le=10_000, description="assets /fleet lists by default")
    max_fleet_size: int = Field(
        10_000, gt=0, description="assets one /fleet answer may rank at most"
    )

    @model_validator(mode="after")
    def _check_costs(self) -> ManufacturingSettings:
        if self.unplanned_failure_cost <= self.planned_maintenance_cost:
            raise ValueError("an unplanned failure must cost more than a planned visit")
        return self


@lru_cache(maxsize=1)
def get_settings() -> ManufacturingSettings:
    return ManufacturingSettings()


def reset_settings() -> None:
    """Forget the cached settings (tests change the environment and call this)."""
    get_settings.cache_clear()
