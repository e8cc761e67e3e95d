"""The API's request and response models: nothing untyped crosses the API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class ScoreIn(BaseModel):
    request_id: str | None = Field(
        default=None, max_length=200, description="idempotency key: a retry returns the same answer"
    )
    values: list[FiniteFloat] = Field(min_length=3, max_length=3, description="the 3 inputs")


class ScoreOut(BaseModel):
    score: float
    model_version: str


class NoteIn(BaseModel):
    text: str = Field(min_length=1, max_length=200)


class NoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    text: str
    author: str
    created_at: datetime


class NotesOut(BaseModel):
    notes: list[NoteOut]
