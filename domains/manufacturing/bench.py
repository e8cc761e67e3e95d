"""``verticals bench manufacturing``: reading ingestion and health queries over HTTP, next to a
bare FastAPI echo endpoint measured in the same run.

Both servers run as uvicorn subprocesses on 127.0.0.1 (``workers`` processes each) and are
driven one after the other by core's asyncio load generator (HTTP/1.1 keep-alive, ``clients``
concurrent connections):

- ingestion: ``POST /v1/manufacturing/assets/{id}/readings`` with batches of ``batch_sizes``
  cycles, always new cycles (spread over ``INGEST_ASSETS`` assets), so every request stores;
  compared with ``POST /echo`` of the same body;
- health: ``GET /assets/{id}/health`` over the demo's 12 C-MAPSS engines (uploaded first) and
  ``GET /fleet``; compared with ``GET /echo``. These answer from stored estimates once computed
  (the warm-up computes them): what a dashboard polling the fleet costs.

The server uses a temporary home folder and a temporary SQLite database (or, with
``database_url``, a scratch PostgreSQL database created and dropped), the shipped models, and no
rate limits (they would cap the figures at the limiter's rate). Every non-200 answer counts as
an error; rates count every answer, so a run with errors says so in its ``errors``.
Without a production RUL model health answers 503: its rows are then ``null`` with the reason,
and the ingestion figures still stand.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Annotated, Any

import typer
from sqlalchemy.engine import make_url
from verticals.core.serving.loopback import (
    ECHO_FACTORY,
    HttpRequest,
    answers,
    free_port,
    http_load,
    scratch_server,
)
from verticals.domains.manufacturing import NAME
from verticals.domains.manufacturing.model.cmapss import READING_COLUMNS

PREFIX = f"/v1/{NAME}"
INGEST_ASSETS = 16
DEMO_UNITS = 12
BATCH_SIZES = (1, 50)


class _Cycles:
    """Requests of ``batch`` new cycles each, round-robin over the bench's assets; ``next``
    (asset -> its next cycle) is shared between cases, so no case resends a stored cycle."""

    def __init__(self, batch: int, next_cycle: dict[int, int]) -> None:
        self.batch = batch
        self.next = next_cycle
        self.assets = itertools.cycle(range(1, INGEST_ASSETS + 1))
        self.row = {c: 0.5 + i for i, c in enumerate(READING_COLUMNS)}

    def body(self, first: int) -> dict[str, Any]:
        return {
            "readings": [
                {"cycle": c, **{k: v + c * 1e-4 for k, v in self.row.items()}}
                for c in range(first, first + self.batch)
            ]
        }

    def __call__(self) -> HttpRequest:
        asset = next(self.assets)
        first = self.next[asset]
        self.next[asset] = first + self.batch
        return "POST", f"{PREFIX}/assets/bench-{asset}/readings", self.body(first)


def _fixed(method: str, path: str, body: Any = None) -> Callable[[], HttpRequest]:
    return lambda: (method, path, body)


def _queries(kind: str) -> Callable[[], HttpRequest]:
    if kind == "fleet":
        return lambda: ("GET", f"{PREFIX}/fleet", None)
    units = itertools.cycle(range(1, DEMO_UNITS + 1))
    return lambda: ("GET", f"{PREFIX}/assets/unit-{next(units)}/health", None)


def _run(url: str, make: Callable[[], HttpRequest], headers: dict[str, str], clients: int,
         seconds: float) -> dict[str, float]:  # fmt: skip
    return asyncio.run(http_load(url, make, headers, clients, seconds))


def _prepare(url: str, headers: dict[str, str]) -> str | None:
    """Register the ingestion assets, upload the demo engines; None when health is served,
    else why not (the status and error of the first health query)."""
    import httpx
    from verticals.shared_models.manufacturing import DEMO_ENGINES

    with httpx.Client(base_url=f"{url}{PREFIX}", headers=headers, timeout=120) as client:
        for i in range(1, INGEST_ASSETS + 1):
            client.post("/assets", json={"asset_id": f"bench-{i}", "kind": "turbofan"})
        files = {"file": (DEMO_ENGINES.name, DEMO_ENGINES.read_bytes(), "text/plain")}
        upload = client.post("/readings:upload", files=files)
        if upload.status_code != 200:
            raise RuntimeError(f"uploading the demo engines failed: {upload.status_code}")
        probe = client.get("/assets/unit-1/health")
        if probe.status_code == 200:
            return None
        return f"{probe.status_code} {probe.json().get('error', {}).get('code', '')}".strip()


def run_bench(
    *,
    seconds: float = 5.0,
    clients: int = 8,
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
    workers: int = 1,
    database_url: str | None = None,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    from verticals.core.serving.provision import launched_server

    with scratch_server(NAME, [f"{NAME}:read", f"{NAME}:write"], database_url) as scratch:
        env, headers, scratch_url = scratch.env, scratch.headers, scratch.database_url
        results: dict[str, Any] = {
            "mode": "http-loopback",
            "client": "asyncio-http1.1-keepalive",
            "seconds_per_case": seconds,
            "clients": clients,
            "workers": workers,
            "database": make_url(scratch_url).get_backend_name(),
        }
        echo: dict[str, Any] = {}
        with launched_server(
            ECHO_FACTORY, env, free_port(), ready=answers("/docs"), workers=workers
        ) as (url, _):
            for batch in batch_sizes:
                body = _Cycles(batch, {}).body(1)
                echo[f"post_{batch}"] = _run(
                    url, _fixed("POST", "/echo", body), {}, clients, seconds
                )
                log(f"echo  POST {batch:>3} readings  {echo[f'post_{batch}']}")
            echo["get"] = _run(url, _fixed("GET", "/echo"), {}, clients, seconds)
            log(f"echo  GET                {echo['get']}")
        served: dict[str, Any] = {}
        with launched_server(
            "verticals.apps.api:create_app", env, free_port(), ready=answers("/healthz"),
            workers=workers,
        ) as (url, _):  # fmt: skip
            unavailable = _prepare(url, headers)
            next_cycle = dict.fromkeys(range(1, INGEST_ASSETS + 1), 1)
            for batch in batch_sizes:
                cycles = _Cycles(batch, next_cycle)
                _run(url, cycles, headers, min(clients, 4), min(1.0, seconds))  # warm-up
                out = _run(url, cycles, headers, clients, seconds)
                out["readings_per_s"] = round(out["rps"] * batch, 1)
                served[f"ingest_{batch}"] = out
                log(f"ingest     {batch:>3} readings  {out}")
            for kind in ("health", "fleet"):
                if unavailable is not None:
                    served[kind] = None
                    continue
                _run(url, _queries(kind), headers, min(clients, 4), min(1.0, seconds))  # warm-up
                served[kind] = _run(url, _queries(kind), headers, clients, seconds)
                log(f"{kind:<10}                {served[kind]}")
    results["echo"] = echo
    results[NAME] = served
    results["health_unavailable"] = unavailable
    results["readings_per_s"] = {
        str(b): served[f"ingest_{b}"]["readings_per_s"] for b in batch_sizes
    }
    ratios = {f"ingest_{b}": _ratio(served[f"ingest_{b}"], echo[f"post_{b}"]) for b in batch_sizes}
    for kind in ("health", "fleet"):
        ratios[kind] = _ratio(served[kind], echo["get"]) if served[kind] else None
    results["ratio_vs_echo"] = ratios
    log(
        "readings/s "
        + ", ".join(f"batch {b}: {v}" for b, v in results["readings_per_s"].items())
        + "; requests/s vs echo: "
        + ", ".join(f"{k} {v}" for k, v in ratios.items())
        + (f" (health unavailable: {unavailable})" if unavailable else "")
    )
    return results


def _ratio(served: dict[str, float], echo: dict[str, float]) -> float:
    return round(served["rps"] / max(echo["rps"], 1e-9), 3)


def bench_command(service: object) -> Callable[..., None]:
    """The ``bench`` verb; ``service`` is unused (the bench runs its own server) and taken so
    every verb is built the same way."""

    def bench(
        seconds: Annotated[float, typer.Option("--seconds", min=0.1, help="per case")] = 5.0,
        clients: Annotated[
            int, typer.Option("--clients", min=1, max=256, help="concurrent connections")
        ] = 8,
        batch: Annotated[
            list[int] | None,
            typer.Option("--batch", min=1, max=5000, help="cycles per POST (repeatable)"),
        ] = None,
        workers: Annotated[
            int, typer.Option("--workers", min=1, help="uvicorn worker processes, both servers")
        ] = 1,
        database_url: Annotated[
            str | None,
            typer.Option(
                "--database-url",
                help="a PostgreSQL server URL: the bench runs on a scratch database created "
                "there (and dropped after) instead of a temporary SQLite file",
            ),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="print one JSON object as the last line")
        ] = False,
    ) -> None:
        """Reading ingestion (readings/s at 1 and 50 cycles per POST) and health queries/s
        (GET /assets/{id}/health, GET /fleet) next to a bare FastAPI echo endpoint measured in
        the same run, over HTTP on loopback: uvicorn on 127.0.0.1 with a temporary home, a
        temporary SQLite database (scratch PostgreSQL with --database-url), the shipped models
        and the 12 demo engines."""
        import json

        from rich.console import Console

        console = Console(stderr=True)
        result = run_bench(
            seconds=seconds,
            clients=clients,
            batch_sizes=tuple(batch) if batch else BATCH_SIZES,
            workers=workers,
            database_url=database_url,
            log=console.print,
        )
        if as_json:
            print(json.dumps(result))

    return bench
