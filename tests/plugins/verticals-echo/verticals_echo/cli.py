"""``verticals train|evaluate|score echo``: plain functions annotated for Typer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from verticals_echo.model.data import SAMPLE
from verticals_echo.service import EchoService


def commands(service: EchoService) -> dict[str, Callable[..., Any]]:
    def train(
        version: Annotated[str, typer.Option("--version", help="the new model version")],
        data: Annotated[
            Path, typer.Option("--data", help="JSON list of {values, target}")
        ] = SAMPLE,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Train on DATA less a validation split; register, and promote when good enough."""
        version, metrics, promoted = service.train(data, version)
        result = {"version": version, "metrics": metrics, "promoted": promoted}
        print(json.dumps(result) if as_json else result)

    def evaluate(
        data: Annotated[Path, typer.Option("--data", help="JSON list of {values, label}")],
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Metrics of the production model on DATA."""
        metrics = service.evaluate(data)
        print(json.dumps(metrics) if as_json else metrics)

    def score(
        data: Annotated[Path, typer.Option("--data", help="JSON list of {values}")],
    ) -> None:
        """One score per row of DATA, one per line."""
        for value in service.score_file(data):
            print(value)

    return {"train": train, "evaluate": evaluate, "score": score}
