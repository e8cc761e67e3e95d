"""``verticals compress <domain>/<model>``: a Typer-annotated function the CLI mounts."""

from __future__ import annotations

import json as jsonlib
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from verticals.core.compression.pipeline import CompressionPlan, compress
from verticals.core.compression.report import CompressionReport
from verticals.core.compression.resolve import resolve_target
from verticals.core.compression.trees import TreeCompressionTarget, compress_trees


def _print_table(report: CompressionReport) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report.model} (version {report.version or '-'})")
    for column in ("variant", "bytes", "ratio", "b1 ms", "b32 ms", report.metric_name, "drop"):
        table.add_column(column, justify="left" if column == "variant" else "right")

    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for v in report.variants:
        table.add_row(
            v.name,
            f"{v.bytes:,}",
            fmt(v.size_ratio, ".3f"),
            fmt(v.latency_ms_b1, ".2f"),
            fmt(v.latency_ms_b32, ".1f"),
            fmt(v.metric, ".4f"),
            fmt(v.metric_drop, "+.4f"),
        )
    Console(stderr=True).print(table)


def compress_command(
    model: Annotated[
        str,
        typer.Argument(help="'<domain>/<model>' (or 'package.module:factory' for a custom target)"),
    ],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="evaluation file in the domain's format (default: its own)"),
    ] = None,
    split: Annotated[str, typer.Option("--split", help="split of --data to score")] = "val",
    json: Annotated[bool, typer.Option("--json", help="print the report as the last line")] = False,
    prune: Annotated[
        list[float] | None,
        typer.Option("--prune", help="fraction of channels to remove; repeatable (default 0.75)"),
    ] = None,
    max_metric_drop: Annotated[
        float | None,
        typer.Option("--max-metric-drop", help="tolerance stored with each variant"),
    ] = None,
    register: Annotated[
        bool,
        typer.Option("--register/--no-register", help="store the report and variants"),
    ] = True,
    out: Annotated[
        Path | None, typer.Option("--out", help="folder for the variants (default: registry)")
    ] = None,
) -> None:
    """Build and measure every variant (torch, ONNX fp32, static INT8, FP16, pruned) in one run.

    Tree models (XGBoost) compare the native booster with its ONNX conversion instead.

    Latencies are medians on this machine's CPU (and GPU when present). With a registered
    model version, the report is stored with it and each ONNX variant is registered as
    '<version>+<variant>' (staging), refused promotion when its metric drops past tolerance.
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    target = resolve_target(model, data, split)
    if max_metric_drop is not None:
        if not 0 <= max_metric_drop < 1:
            raise typer.BadParameter("must be in [0, 1)", param_hint="--max-metric-drop")
        target.max_metric_drop = max_metric_drop
    plan = CompressionPlan(prune_amounts=tuple(prune) if prune else (0.75,))
    storing = register and target.version is not None
    with tempfile.TemporaryDirectory() as tmp:
        if out is None and storing and target.version is not None:
            from verticals.core.compression.store import artifacts_folder

            out = artifacts_folder(target.name, target.version)
        folder = out or Path(tmp)
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            transient=True,
        ) as progress:
            task = progress.add_task(f"compressing {target.name}", total=None)
            if isinstance(target, TreeCompressionTarget):
                report = compress_trees(target, folder)
            else:
                report = compress(
                    target, folder, plan, step=lambda msg: progress.update(task, description=msg)
                )
        if storing:
            from verticals.core.compression.store import store_report
            from verticals.core.db import session_scope

            with session_scope() as session:
                store_report(session, report, max_metric_drop=max_metric_drop)
    _print_table(report)
    if json:
        print(jsonlib.dumps(report.summary()))
