"""Typed request and response models of the finance API."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from verticals.core.serving.contract import UtcDatetime

Identifier = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$", examples=["12345"]),
]
Decision = Literal["approve", "review", "decline"]
MAX_AMOUNT = 1_000_000.0
MIN_YEAR, MAX_YEAR = 2000, 2100
# The year as written lies strictly inside the range, so that no offset (at most a day) can
# carry the instant out of it once converted to UTC: ``2100-12-31T23:59:59-14:00`` is refused
# rather than stored in 2101. A pattern, so the OpenAPI states exactly what is accepted.
TX_DATETIME_PATTERN = r"^(200[1-9]|20[1-9][0-9])-"
_TX_DATETIME = re.compile(TX_DATETIME_PATTERN)


class TransactionIn(BaseModel):
    """One card authorisation. ``tx_datetime`` is ISO 8601; an offset is converted to UTC.
    Types are strict: ``amount`` is a JSON number (not a string or a boolean)."""

    model_config = ConfigDict(extra="forbid")

    transaction_id: Identifier
    tx_datetime: datetime = Field(
        description=f"ISO 8601 (RFC 3339) in the years {MIN_YEAR + 1} to {MAX_YEAR - 1} as "
        "written; an offset is converted to UTC, none means UTC",
        json_schema_extra={"pattern": TX_DATETIME_PATTERN},
    )
    customer_id: Identifier
    terminal_id: Identifier
    amount: float = Field(
        ge=0, le=MAX_AMOUNT, allow_inf_nan=False, strict=True, description="currency units"
    )

    @field_validator("tx_datetime", mode="before")
    @classmethod
    def _iso_text(cls, value: object) -> object:
        """Text in the documented years (no Unix timestamps, numbers or booleans), or a
        datetime from Python callers."""
        if isinstance(value, datetime):
            return value
        if not isinstance(value, str):
            raise ValueError("tx_datetime must be an ISO 8601 date-time string")
        if not _TX_DATETIME.match(value):
            raise ValueError(
                f"tx_datetime must be ISO 8601 in the years {MIN_YEAR + 1} to {MAX_YEAR - 1}"
            )
        return value

    @field_validator("tx_datetime")
    @classmethod
    def _plausible(cls, value: datetime) -> datetime:
        """Stored and featurised as naive UTC (the handbook's clock): an offset is applied here,
        once, at the boundary."""
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            raise ValueError(f"tx_datetime must lie between {MIN_YEAR} and {MAX_YEAR}")
        return value


class Reason(BaseModel):
    feature: str
    value: float | None
    contribution: float = Field(description="XGBoost margin contribution (log-odds)")
    phrase: str


class ScoreOut(BaseModel):
    transaction_id: str
    fraud_probability: float = Field(ge=0, le=1)
    decision: Decision
    reasons: list[Reason]
    model_version: str


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transactions: list[TransactionIn] = Field(min_length=1)


class BatchOut(BaseModel):
    n_transactions: int
    results: list[ScoreOut]


class LabelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    is_fraud: bool = Field(strict=True)
    analyst: str | None = Field(None, max_length=100)
    note: str | None = Field(None, max_length=2000)


class LabelOut(BaseModel):
    transaction_id: str
    is_fraud: bool
    analyst: str | None
    labelled_at: UtcDatetime


class TransactionOut(BaseModel):
    transaction_id: str
    tx_datetime: UtcDatetime
    customer_id: str
    terminal_id: str
    amount: float
    fraud_probability: float
    decision: Decision
    reasons: list[Reason]
    model_version: str
    label: bool | None
    review_status: Literal["pending", "resolved"] | None


class ReviewItem(BaseModel):
    transaction_id: str
    tx_datetime: UtcDatetime
    customer_id: str
    terminal_id: str
    amount: float
    fraud_probability: float
    decision: Decision
    reasons: list[Reason]
    priority: float = Field(0.0, description="the labeling queue's priority (higher first)")
    why: str | None = Field(None, description="why the item was queued")
    second_review: bool = Field(False, description="a likely label issue: a second opinion")


class ReviewQueueOut(BaseModel):
    n_items: int
    items: list[ReviewItem]
