"""``verticals train|evaluate|score|bench|ingest manufacturing``: plain functions for Typer."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from verticals.core.db import session_scope
from verticals.domains.manufacturing.model import shipping
from verticals.domains.manufacturing.service import ManufacturingService


class Task(StrEnum):
    rul = "rul"
    failure = "failure"


TaskOption = Annotated[
    Task, typer.Option("--task", help="rul: turbofan remaining useful life; failure: machine tools")
]
JsonOption = Annotated[bool, typer.Option("--json", help="one JSON object on the last line")]


def _print(result: dict[str, Any], as_json: bool) -> None:
    print(json.dumps(result) if as_json else json.dumps(result, indent=1))


def _prepare() -> None:
    """A migrated database (a fresh home works) with the shipped models registered."""
    from verticals.core.bootstrap import prepare_database
    from verticals.core.plugins import discover

    prepare_database(discover())
    shipping.ensure_shipped()


def commands(service: ManufacturingService) -> dict[str, Callable[..., Any]]:
    def train(
        task: TaskOption,
        data: Annotated[Path, typer.Option("--data", help="train_FD00x.txt, or ai4i2020.csv")],
        ship: Annotated[
            Path | None,
            typer.Option("--ship", help="write a shipped bundle here instead of registering"),
        ] = None,
        version: Annotated[str | None, typer.Option("--version")] = None,
        seed: Annotated[int, typer.Option("--seed")] = 0,
        cv: Annotated[
            int, typer.Option("--cv", help="failure: k-fold figures for the card (0: none)")
        ] = 5,
        quick: Annotated[bool, typer.Option("--quick", hidden=True)] = False,
        as_json: JsonOption = False,
    ) -> None:
        """Train a model on DATA (validation carved out of it), then ship it to --ship or
        register it and promote it when it is at least as good as production."""
        version = version or datetime.now(UTC).strftime("%Y.%m.%d-%H%M%S")
        if task is Task.rul:
            from verticals.domains.manufacturing.model.cards import rul_card
            from verticals.domains.manufacturing.model.rul_training import train_rul

            model, report = train_rul(data, seed=seed, quick=quick)
            card = rul_card(version, report, data.name)
            figures = None
        else:
            from verticals.domains.manufacturing.model.cards import failure_card
            from verticals.domains.manufacturing.model.failure_training import (
                cross_validate_failure,
                train_failure,
            )

            model, report = train_failure(data, seed=seed)
            figures = cross_validate_failure(data, folds=cv, seed=seed) if cv > 1 else None
            card = failure_card(version, report, data.name, figures)
        payloads = model.to_payloads()
        result: dict[str, Any] = {"task": task.value, "version": version, "metrics": card.metrics}
        if ship is not None:
            shipping.ship(task.value, card, payloads, ship)
            # without wall-clock seconds: shipping twice from the same data writes the same bytes
            body = {"train": report.model_dump(mode="json", exclude={"seconds"}), "cv": figures}
            (ship / task.value / "report.json").write_text(json.dumps(body, indent=2) + "\n")
            result["shipped"] = str(ship / task.value)
        else:
            _prepare()
            with session_scope() as session:
                promotion = shipping.register_trained(session, task.value, card, payloads)
            result["promoted"] = promotion.promoted
            result["production_before"] = promotion.production_before
            if promotion.promoted:
                service.load()
        _print(result, as_json)

    def evaluate(
        task: TaskOption,
        data: Annotated[Path, typer.Option("--data", help="test_FD00x.txt, or ai4i2020.csv")],
        truth: Annotated[
            Path | None, typer.Option("--truth", help="rul: RUL_FD00x.txt, line i = unit i")
        ] = None,
        cv: Annotated[int, typer.Option("--cv", help="failure: folds", min=2, max=20)] = 5,
        as_json: JsonOption = False,
    ) -> None:
        """rul: the production model on the last cycle of each unit of DATA against TRUTH
        (rmse, nasa_score, coverage, mean_interval_width). failure: out-of-fold figures of the
        shipped recipe on DATA (f1, roc_auc, average_precision)."""
        _prepare()
        service.load()
        if task is Task.rul:
            if truth is None:
                raise typer.BadParameter(
                    "--truth is required with --task rul", param_hint="--truth"
                )
            metrics = service.evaluate_rul(data, truth)
        else:
            metrics = service.evaluate_failure(data, cv)
        _print(metrics, as_json)

    def score(
        data: Annotated[Path, typer.Option("--data", help="a C-MAPSS file (test_FD00x.txt)")],
    ) -> None:
        """One JSON line per unit of DATA (in file order): RUL, interval and warnings at its
        last cycle."""
        from verticals.domains.manufacturing.model.cmapss import histories, read_cmapss

        _prepare()
        service.load()
        model, version = service.rul_model()
        units, readings = histories(read_cmapss(data))
        for unit, estimate in zip(units, model.predict(readings), strict=True):
            print(
                json.dumps({"unit": int(unit), **estimate.model_dump(), "model_version": version})
            )

    from verticals.domains.manufacturing.bench import bench_command
    from verticals.domains.manufacturing.ingest import ingest_command

    return {
        "train": train,
        "evaluate": evaluate,
        "score": score,
        "bench": bench_command(service),
        "ingest": ingest_command(service),
    }
