"""CLI verbs, mounted by the app as ``verticals train medical`` / ``verticals evaluate medical``.

Both delegate to ``verticals.domains.medical.model``; with ``--json`` the last line of stdout is
one JSON object.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from verticals.domains.medical import model_api

if TYPE_CHECKING:
    from verticals.core.training.distributed import Rendezvous


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


def _rendezvous(
    nnodes: int, node_rank: int, endpoint: str | None, run_id: str
) -> Rendezvous | None:
    """The multi-node rendezvous of the flags (validated), or None for a one-node job."""
    if nnodes == 1 and node_rank == 0 and endpoint is None:
        return None
    from verticals.core.training.distributed import Rendezvous  # imports torch: only here

    return Rendezvous(nnodes=nnodes, node_rank=node_rank, endpoint=endpoint, run_id=run_id)


def train_command(
    task: Annotated[str, typer.Option("--task", help="pneumonia | breast")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="MedMNIST .npz (default: the shared MedMNIST file)"),
    ] = None,
    nproc: Annotated[
        int, typer.Option("--nproc", min=1, help="processes on this node (DDP via torchrun)")
    ] = 1,
    nnodes: Annotated[
        int, typer.Option("--nnodes", help="nodes (machines) in the job; >1 needs --rdzv-endpoint")
    ] = 1,
    node_rank: Annotated[int, typer.Option("--node-rank", help="this node, 0..nnodes-1")] = 0,
    rdzv_endpoint: Annotated[
        str | None,
        typer.Option(
            "--rdzv-endpoint",
            metavar="HOST:PORT",
            help="node 0's address; it hosts the c10d rendezvous there",
        ),
    ] = None,
    rdzv_id: Annotated[
        str, typer.Option("--rdzv-id", help="job id, the same on every node")
    ] = "verticals-medical",
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
    rendezvous = _rendezvous(nnodes, node_rank, rdzv_endpoint, rdzv_id)
    if ship is not None:
        from verticals.core.errors import InvalidInput

        if cv is None or nproc > 1 or rendezvous is not None:
            raise InvalidInput("--ship needs --cv K and one process")
        card = model_api.ship_task(name, seed, ship, cv=cv, data=data, **options)
        payload = {"task": name, "version": ship, "metrics": card}
        print(json.dumps(payload) if as_json else f"shipped medical/{name} {ship}: {card}")
        return
    _prepare_database()
    if cv is not None:
        options["cv"] = cv
    if rendezvous is not None:
        options["rendezvous"] = rendezvous
    report = model_api.train_task(name, data, nproc, seed, **options)
    if report is None:  # this node's workers did not include global rank 0
        if as_json:
            print(json.dumps({"role": "worker", "node_rank": node_rank, "nnodes": nnodes}))
        else:
            typer.echo(f"node {node_rank} of {nnodes}: worker; the node that ran global rank 0 "
                       "reports and registers the model")
        return
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
