"""The API's request and response models: nothing untyped crosses the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model
from verticals.domains.manufacturing.model.cmapss import READING_COLUMNS
from verticals.domains.manufacturing.model.failure import (
    FailureMode,
    FeatureReason,
    MachineReading,
)

# strict: numbers are JSON numbers, never "12.5" or true (issue 16's contract)
FiniteFloat = Annotated[float, Field(allow_inf_nan=False, strict=True)]
AssetId = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$",
        description="the plant's id of the asset: letters, digits, . _ : - (at most 64)",
        examples=["unit-17"],
    ),
]
AssetKind = Literal["turbofan", "machine_tool"]
TurbofanDecision = Literal["run", "inspect", "replace"]
MachineDecision = Literal["ok", "inspect", "stop"]
MAX_READINGS = 100_000  # the schema's hard bound; the setting sets the working limit


class AssetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asset_id: AssetId
    kind: AssetKind
    name: str | None = Field(default=None, max_length=200)
    line: str | None = Field(default=None, max_length=200, description="production line or fleet")


class AssetOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    asset_id: str
    kind: AssetKind
    name: str | None
    line: str | None
    created_at: datetime


class AssetsOut(BaseModel):
    assets: list[AssetOut]


class _ReadingBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def values(self) -> list[float]:
        """The 24 values in C-MAPSS column order (settings, then sensors)."""
        return [float(getattr(self, column)) for column in READING_COLUMNS]


_reading_fields: dict[str, Any] = {
    "cycle": (int, Field(ge=1, le=1_000_000, strict=True, description="operating cycle, from 1")),
    **{
        column: (FiniteFloat, Field(description=f"C-MAPSS column {column}"))
        for column in READING_COLUMNS
    },
}
TurbofanReading = create_model(  # the 24 C-MAPSS columns, spelled as the data set does
    "TurbofanReading", __base__=_ReadingBase, **_reading_fields
)


class ReadingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    readings: list[TurbofanReading] = Field(  # type: ignore[valid-type]
        min_length=1, max_length=MAX_READINGS, description="cycles of one asset, in any order"
    )


class ReadingsOut(BaseModel):
    asset_id: str
    accepted: int = Field(description="readings stored by this request")
    unchanged: int = Field(description="readings already stored with the same values")
    last_cycle: int | None


class UploadOut(BaseModel):
    units: int = Field(description="units in the file")
    assets_created: list[str]
    accepted: int
    unchanged: int


class HealthOut(BaseModel):
    """The health of one asset: remaining useful life (turbofans) or failure risk (machines)."""

    asset_id: str
    kind: AssetKind
    last_cycle: int | None = Field(description="latest cycle the estimate saw (turbofans)")
    rul: float | None = Field(description="remaining useful life, in cycles")
    rul_low: float | None
    rul_high: float | None
    interval_level: float | None = Field(description="nominal coverage of [rul_low, rul_high]")
    failure_probability: float | None = Field(
        description="turbofans: of failing within the maintenance lead time; machines: the "
        "model's probability of a failure"
    )
    risk: float = Field(ge=0, le=1, description="what /fleet ranks by")
    decision: TurbofanDecision | MachineDecision | None
    top_sensors: list[str]
    warnings: list[str]
    model_version: str | None
    updated_at: datetime | None


class FleetOut(BaseModel):
    assets: list[HealthOut]
    total: int = Field(description="assets of the tenant")


class MachineScoreIn(MachineReading):
    model_config = ConfigDict(extra="forbid")

    request_id: str | None = Field(
        default=None, max_length=200, description="idempotency key: a retry returns the same answer"
    )
    asset_id: AssetId | None = Field(
        default=None, description="a registered machine_tool: its health becomes this answer"
    )


class MachineScoreOut(BaseModel):
    failure_probability: float
    decision: MachineDecision
    likely_failure_modes: list[FailureMode]
    reasons: list[FeatureReason]
    model_version: str


class OutcomeIn(BaseModel):
    """What happened to a machine after its last scored reading (a maintenance outcome)."""

    model_config = ConfigDict(extra="forbid")

    failed: bool = Field(strict=True, description="the machine failed (true) or ran fine")
    failure_modes: list[Literal["TWF", "HDF", "PWF", "OSF", "RNF"]] = Field(
        default_factory=list, max_length=5, description="the modes the planner found"
    )
    note: str | None = Field(None, max_length=2000)


class OutcomeOut(BaseModel):
    asset_id: str
    item_id: int = Field(description="the labeling-queue item the outcome labelled")
    label: Literal["failure", "ok"]
    failure_modes: list[str]
    failure_probability: float | None = Field(description="what the model said at the time")
    recorded_at: datetime


class DeadLetterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    source: str
    topic: str
    error: str
    payload_excerpt: str
    payload_bytes: int
    received_at: datetime
