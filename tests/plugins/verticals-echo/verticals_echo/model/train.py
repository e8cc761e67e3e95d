"""Fit the linear scorer by least squares on the rows' targets."""

from __future__ import annotations

import numpy as np
from verticals.core.errors import InvalidInput

from verticals_echo.model.data import Row
from verticals_echo.model.inference import LinearModel

DECIMALS = 6  # stored weights are rounded: the same data gives byte-identical artifacts


def fit(rows: list[Row]) -> LinearModel:
    if any(row.target is None for row in rows):
        raise InvalidInput("training rows need a target")
    if len(rows) < 4:
        raise InvalidInput(f"training needs at least 4 rows, got {len(rows)}")
    x = np.array([row.values for row in rows], dtype=np.float64)
    y = np.array([row.target for row in rows], dtype=np.float64)
    design = np.hstack([x, np.ones((len(rows), 1))])
    solution, *_ = np.linalg.lstsq(design, y, rcond=None)
    rounded = [round(float(v), DECIMALS) + 0.0 for v in solution]  # + 0.0: no "-0.0"
    return LinearModel(weights=rounded[:-1], bias=rounded[-1])
