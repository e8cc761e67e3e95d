"""``verticals monitor <domain> [--model M] [--json]``: the drift report of a watched model."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def monitor_command(
    domain: Annotated[str, typer.Argument(help="a domain that declares what to watch")],
    model: Annotated[
        str | None, typer.Option("--model", help="watched model (default: the first)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON report as the last line")] = False,
) -> None:
    """Drift of a domain's production model: reference profile vs the current window."""
    from verticals.core.db.migrate import upgrade
    from verticals.core.monitoring.service import report_for
    from verticals.core.plugins import discover

    plugins = discover()
    upgrade(plugins.migration_dirs())
    plugins.get(domain).ensure_production_model()
    report = report_for(plugins, domain, model)
    if as_json:
        line = {
            "domain": report.domain,
            "model": report.model,
            "version": report.version,
            "status": report.status,
            "window": report.window.model_dump(mode="json"),
            "features": [
                {k: f[k] for k in ("name", "statistic", "value", "threshold", "drifted")}
                for f in (row.model_dump() for row in report.features)
            ],
            "performance": report.performance,
            "alerts": [a.model_dump(mode="json") for a in report.alerts],
        }
        print(json.dumps(line, default=str))
        return
    window = report.window
    console.print(
        f"{report.domain}/{report.model}:{report.version} — {report.status}; window "
        f"{window.count} records ({window.start} .. {window.end}), reference "
        f"{window.reference_count}"
    )
    table = Table("feature", "statistic", "value", "threshold", "drifted")
    for row in report.features:
        table.add_row(
            row.name,
            row.statistic,
            f"{row.value:.4g}",
            f"{row.threshold:g}",
            "[red]yes[/red]" if row.drifted else "no",
        )
    console.print(table)
    for alert in report.alerts:
        console.print(f"[red]alert {alert.id} {alert.state}: {alert.summary}[/red]")
