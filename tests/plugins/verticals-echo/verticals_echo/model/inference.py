"""The model as it is served: weights in JSON (never pickle), read from verified bytes."""

from __future__ import annotations

import math

from pydantic import BaseModel, Field
from verticals.core.errors import InvalidInput

from verticals_echo.model.data import N_FEATURES
from verticals_echo.schemas import FiniteFloat


class LinearModel(BaseModel):
    weights: list[FiniteFloat] = Field(min_length=N_FEATURES, max_length=N_FEATURES)
    bias: FiniteFloat

    @classmethod
    def from_bytes(cls, payload: bytes) -> LinearModel:
        return cls.model_validate_json(payload)

    def to_bytes(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode()

    def score(self, values: list[float]) -> float:
        if len(values) != N_FEATURES or not all(math.isfinite(v) for v in values):
            raise InvalidInput(f"values must be {N_FEATURES} finite numbers", {"field": "values"})
        return sum(w * v for w, v in zip(self.weights, values, strict=True)) + self.bias
