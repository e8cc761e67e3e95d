"""CLI verbs, mounted by the app as ``verticals train medical`` / ``verticals evaluate medical``.

Both delegate to ``verticals.domains.medical.model``; with ``--json`` the last line of stdout is
one JSON object.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from verticals.domains.medical import model_api


def _known_task(task: str) -> str:
    from verticals.core.errors import InvalidInput

    name = task.strip().lower()
    known = sorted(model_api.tasks())
    if name not in known:
        raise InvalidInput(f"unknown task {task!r}", {"known_tasks": known})
    return name


def _prepare_database() -> None:
    from verticals.core.bootstrap import prepare_database
    from verticals.core.plugins import discover

    prepare_database(discover())


def train_command(
    task: Annotated[str, typer.Option("--task", help="pneumonia | breast")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="MedMNIST .npz (default: the shared MedMNIST file)"),
    ] = None,
    nproc: Annotated[int, typer.Option("--nproc", min=1, help="processes (DDP via torchrun)")] = 1,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="override the task recipe's epochs")
    ] = None,
    cv: Annotated[
        int | None,
        typer.Option("--cv", min=2, help="k-fold cross-validation over train+val, then a final "
                     "model on all of it (calibrated; cv_* figures in its card)"),
    ] = None,
    ship: Annotated[
        str | None,
        typer.Option("--ship", metavar="VERSION", help="with --cv: write the model into "
                     "shared_models/medical as VERSION instead of registering it"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
) -> None:
    """Train a medical task's model; register it and promote it when it beats production."""
    name = _known_task(task)
    options: dict = {"epochs": epochs} if epochs else {}
    if ship is not None:
        from verticals.core.errors import InvalidInput

        if cv is None or nproc > 1:
            raise InvalidInput("--ship needs --cv K and one process")
        card = model_api.ship_task(name, seed, ship, cv=cv, data=data, **options)
        payload = {"task": name, "version": ship, "metrics": card}
        print(json.dumps(payload) if as_json else f"shipped medical/{name} {ship}: {card}")
        return
    _prepare_database()
    if cv is not None:
        options["cv"] = cv
    report = model_api.train_task(name, data, nproc, seed, **options)
    payload = report.model_dump(mode="json") if hasattr(report, "model_dump") else dict(report)
    if as_json:
        print(json.dumps(payload))
    else:
        typer.echo(
            f"trained medical/{name} version {payload.get('version')} in "
            f"{payload.get('seconds', 0):.0f}s; promoted={payload.get('promoted')}"
        )
        for key, value in sorted((payload.get("metrics") or {}).items()):
            typer.echo(f"  {key}: {value:.4f}")


def evaluate_command(
    task: Annotated[str, typer.Option("--task", help="pneumonia | breast")],
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="MedMNIST-layout .npz, or a folder of DICOM/PNG files with labels.csv"
        ),
    ],
    split: Annotated[str, typer.Option("--split", help="the .npz split to use")] = "test",
    as_json: Annotated[bool, typer.Option("--json", help="last line: one JSON object")] = False,
) -> None:
    """Evaluate the production model: ROC AUC, accuracy and n."""
    name = _known_task(task)
    _prepare_database()
    model_api.ensure_production_models()
    metrics = model_api.evaluate_task(name, data, split)
    result = {
        "roc_auc": float(metrics["roc_auc"]),
        "accuracy": float(metrics["accuracy"]),
        "n": int(metrics["n"]),
    }
    if not as_json:
        typer.echo(
            f"medical/{name} on {data} [{split}]: ROC AUC {result['roc_auc']:.4f}, "
            f"accuracy {result['accuracy']:.4f}, n={result['n']}"
        )
    print(json.dumps(result))


def bench_command(
    clients: Annotated[int, typer.Option("--clients", min=1, help="concurrent clients")] = 8,
    seconds: Annotated[float, typer.Option("--seconds", min=1, help="how long to send")] = 60.0,
    ordinary: Annotated[
        bool, typer.Option("--ordinary/--no-ordinary", help="also send a demo DICOM in turn")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="last line: one JSON object")] = False,
) -> None:
    """Hostile uploads against a live API server: PNG, deflate and zip bombs and oversized DICOM
    headers from concurrent clients; reports the server's baseline and peak RSS and the status
    codes (every bomb must get a 4xx, or a 503 while the decoders are busy)."""
    from verticals.domains.medical.bench import run_upload_bench

    result = run_upload_bench(
        clients=clients, seconds=seconds, ordinary=ordinary, log=typer.echo
    )
    if as_json:
        print(json.dumps(result))
