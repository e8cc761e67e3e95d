"""Metrics of a model on rows: accuracy of ``score > 0`` against the label, and the mean
absolute error where every row has a target."""

from __future__ import annotations

from verticals_echo.model.data import Row
from verticals_echo.model.inference import LinearModel


def metrics(model: LinearModel, rows: list[Row]) -> dict[str, float]:
    scores = [model.score(row.values) for row in rows]
    correct = sum((score > 0) == bool(row.label) for score, row in zip(scores, rows, strict=True))
    result = {"accuracy": correct / len(rows), "n": float(len(rows))}
    if all(row.target is not None for row in rows):
        errors = [abs(s - row.target) for s, row in zip(scores, rows, strict=True)]  # type: ignore[operator]
        result["mae"] = sum(errors) / len(rows)
    return result
