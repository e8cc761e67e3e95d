from __future__ import annotations

import pytest
from pydantic import ValidationError
from verticals.core.errors import InvalidInput

from verticals_echo.model.inference import LinearModel


def test_score_is_the_linear_combination():
    model = LinearModel(weights=[1.0, 2.0, 3.0], bias=0.5)
    assert model.score([1, 1, 1]) == 6.5
    assert LinearModel.from_bytes(model.to_bytes()) == model


def test_non_finite_input_and_artifacts_are_refused():
    with pytest.raises(InvalidInput):
        LinearModel(weights=[1.0, 2.0, 3.0], bias=0.0).score([1, float("inf"), 1])
    with pytest.raises(ValidationError):
        LinearModel.from_bytes(b'{"weights": [1, 2], "bias": 0}')
