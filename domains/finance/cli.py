"""CLI verbs of the finance domain (mounted as ``verticals <verb> finance``)."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from verticals.domains.finance.model.fraud_model import FraudModel

console = Console(stderr=True)

DataOption = Annotated[
    Path, typer.Option("--data", help="raw transactions (.parquet or .csv, handbook columns)")
]
JsonOption = Annotated[bool, typer.Option("--json", help="print one JSON object as the last line")]


@contextmanager
def progress_bar(label: str, total: int) -> Iterator[Callable[[int], None]]:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(label, total=total)
        yield lambda done: progress.update(task, completed=done)


def _prepare() -> None:
    from verticals.core.bootstrap import prepare_database
    from verticals.core.plugins import discover

    prepare_database(discover())


def reproduce_command(ctx: typer.Context, verb: str = "train", domain: str = "finance") -> str:
    """The command line that repeats this run: the options given on the command line, in their
    declared order (not ``sys.argv``, which is the host's argv under a test runner)."""
    parts = ["verticals", verb, domain]
    for param in ctx.command.params:
        name = param.name or ""
        # by name: Typer may carry its own copy of click's ParameterSource enum
        if getattr(ctx.get_parameter_source(name), "name", None) != "COMMANDLINE":
            continue
        value = ctx.params[name]
        flag = param.opts[0]
        if getattr(param, "is_flag", False):
            if value:
                parts.append(flag)
            elif param.secondary_opts:
                parts.append(param.secondary_opts[0])
            continue
        parts += [flag, shlex.quote(str(value))]
    return " ".join(parts)


def train(
    ctx: typer.Context,
    data: DataOption,
    ship_to: Annotated[
        Path | None,
        typer.Option("--ship", help="also write the shipped artifacts (model, card) to this folder"),
    ] = None,
    no_promote: Annotated[bool, typer.Option("--no-promote", help="register only")] = False,
    valid_days: Annotated[int, typer.Option("--valid-days", help="validation window")] = 31,
    test_days: Annotated[int, typer.Option("--test-days", help="unseen report window")] = 31,
    gap_days: Annotated[int, typer.Option("--gap-days", help="label-delay gap")] = 7,
    selection_folds: Annotated[
        int,
        typer.Option("--selection-folds", min=1, help="validation windows before the report one"),
    ] = 2,
    backtest_months: Annotated[
        str | None,
        typer.Option(
            "--backtest",
            help="months (YYYY-MM,...) to backtest the selected recipe on, for the model card",
        ),
    ] = None,
    grid: Annotated[str, typer.Option("--grid", help="'default' or 'quick'")] = "default",
    nthread: Annotated[int, typer.Option("--nthread", min=1, help="XGBoost threads per fit")] = 2,
    as_json: JsonOption = False,
) -> None:
    """Select by the mean over the validation windows before the unseen one (rolling backtest),
    report the unseen window, fit on all data; register the model and promote it when its
    unseen-window average precision beats production's."""
    from verticals.domains.finance.model.data import load_transactions
    from verticals.domains.finance.model.shipping import model_card, new_version, register_run, ship
    from verticals.domains.finance.model.training import Protocol, default_grid, quick_grid
    from verticals.domains.finance.model.training import train as run_training

    if grid not in ("default", "quick"):
        raise typer.BadParameter("--grid must be 'default' or 'quick'", param_hint="--grid")
    protocol = Protocol(
        valid_days=valid_days,
        test_days=test_days,
        gap_days=gap_days,
        selection_folds=selection_folds,
    )
    months = _months(backtest_months) if backtest_months else None
    _prepare()
    started = time.perf_counter()
    frame = load_transactions(data)
    console.print(f"loaded {len(frame):,} transactions from {data.name}")
    with progress_bar("features", len(frame)) as advance:
        report = run_training(
            frame,
            protocol=protocol,
            grid=quick_grid(nthread) if grid == "quick" else default_grid(nthread),
            backtest_months=months,
            log=console.print,
            on_features=advance,
        )
    version = new_version()
    card = model_card(report, version, data, len(frame), reproduce_command(ctx))
    outcome = register_run(report, card, promote_if_better=not no_promote)
    if ship_to is not None:
        outcome["shipped"] = ship(report, card, ship_to, frame)
    outcome["seconds"] = round(time.perf_counter() - started, 1)
    summary = {"validation": report.validation, "report": report.report, **outcome}
    console.print(
        f"registered {version} ({'promoted' if outcome['promoted'] else 'not promoted'}) "
        f"in {outcome['seconds']}s"
    )
    if as_json:
        print(json.dumps(summary, default=float))


def _months(text: str) -> list[str]:
    from verticals.domains.finance.model.backtest import month_window

    months = [m.strip() for m in text.split(",") if m.strip()]
    if not months:
        raise typer.BadParameter("give at least one month (YYYY-MM)", param_hint="--folds")
    for month in months:
        try:
            month_window(month)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--folds") from exc
    return months


def backtest(
    data: DataOption,
    folds: Annotated[
        str,
        typer.Option("--folds", help="validation months, e.g. 2018-06,2018-07,2018-08"),
    ],
    gap_days: Annotated[int, typer.Option("--gap-days", help="label-delay gap")] = 7,
    grid: Annotated[str, typer.Option("--grid", help="'default' or 'quick'")] = "default",
    nthread: Annotated[int, typer.Option("--nthread", min=1, help="XGBoost threads per fit")] = 2,
    as_json: JsonOption = False,
) -> None:
    """Rolling backtest: for each month M of --folds, train every candidate of the grid on the
    months before M (up to --gap-days before it: the label delay) and validate on M; per-fold and
    mean AP, ROC AUC and card precision@100, the candidate with the best mean first. Nothing is
    registered. Keep the month you report as unseen out of --folds when you select with this."""
    from verticals.domains.finance.model.data import load_transactions
    from verticals.domains.finance.model.training import (
        Protocol,
        backtest_frame,
        default_grid,
        quick_grid,
    )

    if grid not in ("default", "quick"):
        raise typer.BadParameter("--grid must be 'default' or 'quick'", param_hint="--grid")
    months = _months(folds)
    frame = load_transactions(data)
    console.print(f"loaded {len(frame):,} transactions from {data.name}")
    try:
        with progress_bar("features", len(frame)) as advance:
            result = backtest_frame(
                frame,
                months,
                protocol=Protocol(gap_days=gap_days),
                grid=quick_grid(nthread) if grid == "quick" else default_grid(nthread),
                log=console.print,
                on_features=advance,
            )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--folds") from exc
    mean, std = result["mean"], result["std"]
    for month, metrics in result["folds"].items():
        console.print(
            f"{month}: AP={metrics['average_precision']:.4f} AUC={metrics['roc_auc']:.4f} "
            f"CP@100={metrics['card_precision_at_100']:.4f}"
        )
    console.print(
        f"{result['selected']} ({result['rounds']} rounds): mean AP="
        f"{mean['average_precision']:.4f}±{std['average_precision']:.4f} "
        f"AUC={mean['roc_auc']:.4f}±{std['roc_auc']:.4f} "
        f"CP@100={mean['card_precision_at_100']:.4f}±{std['card_precision_at_100']:.4f}"
    )
    if as_json:
        print(json.dumps(result))


def evaluate(
    data: DataOption,
    since: Annotated[
        datetime | None,
        typer.Option("--from", help="metrics over rows at or after this date (YYYY-MM-DD)"),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate the production model: features over the whole file in time order (labels used
    only after the delay), metrics over rows at or after --from."""
    from verticals.domains.finance.model.data import load_transactions
    from verticals.domains.finance.model.evaluation import evaluate_frame
    from verticals.domains.finance.model.production import (
        ensure_production_model,
        load_production_model,
    )

    _prepare()
    ensure_production_model()
    model = load_production_model(nthread=2)
    frame = load_transactions(data)
    with progress_bar("features", len(frame)) as advance:
        metrics = evaluate_frame(frame, model, since=since, progress=advance)
    metrics["n_transactions"] = int(metrics["n_transactions"])
    metrics["n_frauds"] = int(metrics["n_frauds"])
    for key, value in metrics.items():
        console.print(f"{key:>24s}: {value}")
    console.print(f"model {model.version}")
    if as_json:
        print(json.dumps(metrics))


def score(
    data: DataOption,
    out: Annotated[Path, typer.Option("--out", help="output .csv or .parquet")],
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            help="score only shard INDEX/COUNT (0-based, e.g. 0/3): the rows whose "
            "TRANSACTION_ID hashes to INDEX; features still see the whole file",
        ),
    ] = None,
    merge: Annotated[
        list[Path] | None,
        typer.Option(
            "--merge",
            help="instead of scoring: merge these shard outputs (repeat, in shard order "
            "0..N-1), check each --data row is there exactly once, write --out",
        ),
    ] = None,
) -> None:
    """Score every row of a raw file with the production model (progress bar); with --shard,
    one deterministic part of it; with --merge, the checked union of the parts."""
    from verticals.core.batch import merge_shards, parse_shard, read_table, shard_mask, write_table
    from verticals.domains.finance.model.data import load_transactions
    from verticals.domains.finance.model.evaluation import score_frame
    from verticals.domains.finance.model.production import (
        ensure_production_model,
        load_production_model,
    )

    if out.suffix.lower() not in (".csv", ".parquet"):
        raise typer.BadParameter("--out must end in .csv or .parquet", param_hint="--out")
    if merge and shard:
        raise typer.BadParameter("give --shard or --merge, not both", param_hint="--merge")
    part = parse_shard(shard) if shard else None
    frame = load_transactions(data)
    if merge:
        merged = merge_shards(
            [read_table(path) for path in merge],
            key="TRANSACTION_ID",
            expected_keys=frame["TRANSACTION_ID"].tolist(),
        )
        write_table(merged, out)
        console.print(f"merged {len(merge)} parts: {len(merged):,} rows, each once, to {out}")
        return
    _prepare()
    ensure_production_model()
    model = load_production_model(nthread=2)
    with progress_bar("scoring", len(frame)) as advance:
        if part is None:
            scored = score_frame(frame, model, progress=advance)
        else:
            scored = _score_shard(frame, model, shard_mask(frame["TRANSACTION_ID"], part), advance)
    write_table(scored, out)
    what = "" if part is None else f" (shard {part} of {len(frame):,} rows)"
    console.print(f"wrote {len(scored):,} scores{what} to {out} (model {model.version})")


def _score_shard(
    frame: pd.DataFrame, model: FraudModel, rows: np.ndarray, advance: Callable[[int], None]
) -> pd.DataFrame:
    """``score_frame``'s columns for the masked rows: features over the whole file in time order
    (a card's history crosses shards), the model on the shard's rows only."""
    from verticals.domains.finance.model.data import frame_features

    X = frame_features(frame, model.feature_config, progress=advance)
    scored = frame.loc[rows, SCORE_COLUMNS].copy()
    scored["fraud_probability"] = model.predict(X[rows])
    return scored


SCORE_COLUMNS = ["TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT"]


def bench(
    seconds: Annotated[
        float, typer.Option("--seconds", help="per concurrency level (per replica count)")
    ] = 5.0,
    batch_rows: Annotated[int, typer.Option("--batch-rows")] = 5000,
    workers: Annotated[
        list[str],
        typer.Option(
            "--workers",
            help="uvicorn worker processes, for both servers; several counts (--workers 1,2 or "
            "given twice) compare that many API replicas on one --database-url instead",
        ),
    ] = ["1"],  # noqa: B006 - typer's way to default a repeatable option
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="a PostgreSQL server URL: the bench runs on a scratch database created there "
            "(and dropped after) instead of a temporary SQLite file; use it with --workers > 1",
        ),
    ] = None,
    clients: Annotated[
        int, typer.Option("--clients", min=1, max=1024, help="replica comparison: clients")
    ] = 32,
    as_json: JsonOption = False,
) -> None:
    """Single-transaction API throughput and p50/p99 at 1, 8 and 32 concurrent clients, next to a
    bare FastAPI echo endpoint measured in the same run, plus batch rows/s. Runs over HTTP on
    loopback: uvicorn on 127.0.0.1 with a temporary home folder, a temporary SQLite database (a
    scratch PostgreSQL one with --database-url) and the shipped model; online-state updates and
    audit records included.

    With several --workers counts and --database-url: for each count n, n API replicas (separate
    processes and ports, one scratch database and home) under --clients closed-loop clients
    spread round-robin over them; throughput and p50/p99 per count and the scaling factor
    (largest count over smallest), the last line JSON."""
    from verticals.core.errors import InvalidInput
    from verticals.domains.finance.bench import run_bench, run_replicas, worker_counts

    counts = worker_counts(workers)
    if len(counts) > 1:
        if database_url is None:
            raise InvalidInput(
                "several --workers counts compare API replicas on one PostgreSQL database: "
                "give --database-url",
                {"field": "database_url"},
            )
        summary = run_replicas(
            counts, database_url=database_url, seconds=seconds, clients=clients, log=console.print
        )
        print(json.dumps(summary))
        return
    result = run_bench(
        seconds=seconds,
        batch_rows=batch_rows,
        workers=counts[0],
        database_url=database_url,
        log=console.print,
    )
    if as_json:
        print(json.dumps(result))
