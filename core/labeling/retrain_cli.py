"""``verticals retrain <domain>``: once, on a schedule (``--every``), or as a job worker;
``--shadow``: the staged challenger scores new live traffic in shadow (core/labeling/shadow.py).

- once: retrain now, print the report (``--json``: its JSON as the last line);
- ``--every 24h``: a first run at once, then one per interval; each run is recorded as a
  ``schedule`` job. SIGTERM/SIGINT end the wait at once and let a running retrain finish.
- ``--worker``: drain the queued jobs (monitoring alerts, ``POST /v1/ops/retrain``), each claimed
  by exactly one worker; ``<domain>`` may be ``all``. With ``--every`` it polls at that interval.
"""

from __future__ import annotations

import json
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

console = Console(stderr=True)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> float:
    """``"90s"``, ``"15m"``, ``"24h"``, ``"7d"`` (or plain seconds) → seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise typer.BadParameter("use e.g. 90s, 15m, 24h or 7d", param_hint="--every")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM/SIGINT while inside (the previous handlers come back after)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_job(plugins: Any, job: Any) -> dict[str, Any]:
    from verticals.core.labeling.retrain import recipe_for, retrain

    recipe = recipe_for(plugins, job.domain)
    plugins.get(job.domain).ensure_production_model()  # the shipped baseline is the champion
    report = retrain(
        recipe,
        model=job.model,
        trigger=job.trigger if job.trigger in ("manual", "schedule", "alert") else "manual",
        job_id=job.id,
        alert_id=job.alert_id,
        log_fn=console.print,
    )
    return report.model_dump(mode="json")


def _scheduled_run(
    plugins: Any, domain: str, model: str | None, since: datetime | None, data: Path | None
) -> dict[str, Any]:
    """One scheduled retrain, recorded as a ``schedule`` job (claimed by this process)."""
    from verticals.core.db import session_scope
    from verticals.core.db.base import utcnow
    from verticals.core.labeling.jobs import finish, worker_name
    from verticals.core.labeling.retrain import recipe_for, retrain
    from verticals.core.labeling.tables import RetrainJobRow

    with session_scope() as session:
        row = RetrainJobRow(
            domain=domain,
            model=model,
            trigger="schedule",
            reason="verticals retrain --every",
            requested_by="schedule",
            status="running",
            worker=worker_name(),
            result={},
        )
        row.created_at = row.started_at = utcnow()
        session.add(row)
        session.flush()
        job_id = row.id
    try:
        report = retrain(
            recipe_for(plugins, domain),
            model=model,
            since=since,
            extra_data=data,
            trigger="schedule",
            job_id=job_id,
            log_fn=console.print,
        ).model_dump(mode="json")
        status = report["decision"]
    except Exception as exc:
        with session_scope() as session:
            finish(session, job_id, "failed", {"error": f"{type(exc).__name__}: {exc}"})
        raise
    with session_scope() as session:
        finish(session, job_id, status, report)
    return report


def retrain_command(
    domain: Annotated[
        str, typer.Argument(help="a domain with a retraining recipe ('all' with --worker)")
    ],
    model: Annotated[
        str | None, typer.Option("--model", help="model to retrain (default: the domain's first)")
    ] = None,
    since: Annotated[
        datetime | None,
        typer.Option("--since", help="leave out rows and labels older than this date"),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option("--data", help="extra data in the domain's format, added to its own"),
    ] = None,
    every: Annotated[
        str | None, typer.Option("--every", help="repeat at this interval, e.g. 24h (scheduled)")
    ] = None,
    worker: Annotated[
        bool, typer.Option("--worker", help="run the queued retrain jobs (alerts, API) instead")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="the report's JSON as the last line")
    ] = False,
    shadow: Annotated[
        bool,
        typer.Option(
            "--shadow",
            help="instead: score new live traffic with the staged challenger in shadow, "
            "then print its comparison with the champion on labelled subjects",
        ),
    ] = False,
    version: Annotated[
        str | None,
        typer.Option("--version", help="with --shadow: the staged version (default: newest)"),
    ] = None,
) -> None:
    """Train a challenger on the domain's data plus accepted labels, judge it against the
    production champion on the same held-back slice, compress it, and promote it through the
    metric gate, or leave it in staging with the reason."""
    from verticals.core.bootstrap import prepare_database
    from verticals.core.labeling.jobs import drain
    from verticals.core.labeling.retrain import recipe_for
    from verticals.core.plugins import discover

    interval = parse_interval(every) if every else None
    plugins = discover()
    prepare_database(plugins)
    if shadow:
        _shadow(plugins, domain, model, version, as_json)
        return
    if not worker or domain != "all":
        recipe_for(plugins, domain)  # fail fast on a domain that cannot retrain
    if not worker:
        plugins.get(domain).ensure_production_model()  # the shipped baseline is the champion
    last: dict[str, Any] = {}
    with stop_on_signals() as stop:
        while not stop.is_set():
            if worker:
                done = drain(
                    lambda job: _run_job(plugins, job),
                    domain=None if domain == "all" else domain,
                )
                last = {"jobs_run": done}
                console.print(f"worker: {done} job(s) run")
            elif interval is None:
                last = _once(plugins, domain, model, since, data)
                console.print(f"{last['model']}: {last['decision']}: {last['reason']}")
            else:
                try:
                    last = _scheduled_run(plugins, domain, model, since, data)
                    console.print(f"{last['model']}: {last['decision']}: {last['reason']}")
                except Exception as exc:  # noqa: BLE001 - recorded on its job; the next run comes
                    last = {"error": f"{type(exc).__name__}: {exc}"}
                    console.print(f"[red]scheduled retrain failed: {last['error']}[/red]")
            if interval is None or stop.wait(interval):
                break
    if as_json:
        print(json.dumps(last, default=str))


def _once(
    plugins: Any, domain: str, model: str | None, since: datetime | None, data: Path | None
) -> dict[str, Any]:
    from verticals.core.labeling.retrain import recipe_for, retrain

    report = retrain(
        recipe_for(plugins, domain),
        model=model,
        since=since,
        extra_data=data,
        trigger="manual",
        log_fn=console.print,
    )
    return report.model_dump(mode="json")


def _shadow(
    plugins: Any, domain: str, model: str | None, version: str | None, as_json: bool
) -> None:
    """``--shadow``: one shadow scoring run, then the report (recorded, never served)."""
    from verticals.core.db import session_scope
    from verticals.core.errors import NotFound
    from verticals.core.labeling.shadow import (
        model_for,
        shadow_report_for,
        shadow_score,
        source_for,
        staged_version,
    )

    model = model_for(source_for(plugins, domain), domain, model)
    if version is None:  # none staged is the usual state: a scheduled run just ends
        try:
            with session_scope() as session:
                staged_version(session, domain, model)
        except NotFound as exc:
            console.print(f"{exc.message}: nothing to shadow")
            if as_json:
                print(json.dumps({"run": None, "detail": exc.message}))
            return
    run = shadow_score(plugins, domain, model, version)
    console.print(
        f"{run.domain}/{run.model}:{run.version}: {run.scored} new live subject(s) scored in "
        f"shadow ({run.total} in all) in {run.seconds:.2f}s"
    )
    report = shadow_report_for(plugins, domain, run.model, run.version)
    console.print(report.summary())
    if as_json:
        print(json.dumps({"run": run.model_dump(mode="json"), **report.model_dump(mode="json")}))
