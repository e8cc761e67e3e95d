"""``verticals bench finance``: the scoring API against a bare FastAPI echo endpoint, over HTTP.

Both servers run as uvicorn subprocesses on 127.0.0.1 (``workers`` processes each, default 1)
and are driven by the same asyncio load generator in this process (HTTP/1.1 keep-alive), one
after the other, at 1, 8 and 32 concurrent clients. The finance server uses a temporary home
folder, a temporary SQLite database (or, with ``database_url``, a scratch database on that
PostgreSQL server: the setup for several workers, as SQLite serialises writers across
processes), the shipped model, and does everything a real request does (online state update,
transaction row, audit record).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy.engine import make_url

LEVELS = (1, 8, 32)


def echo_app() -> Any:
    """The reference: a bare FastAPI app that returns what it is sent."""
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/json")

    return app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _scratch_database(server_url: str | None, home: Path) -> Iterator[str]:
    """A throwaway database: a SQLite file in ``home``, or a new PostgreSQL database created on
    the server of ``server_url`` and dropped afterwards (its registry rows would otherwise point
    at artifacts of a deleted home)."""
    if server_url is None:
        yield f"sqlite:///{home / 'bench.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import ArgumentError, DBAPIError
    from verticals.core.errors import InvalidInput

    try:
        url = make_url(server_url)
    except ArgumentError as exc:
        raise InvalidInput(f"--database-url is not a database URL: {exc}") from None
    if url.get_backend_name() != "postgresql":
        raise InvalidInput(
            f"--database-url must be a PostgreSQL URL, got {url.get_backend_name()!r}",
            {"field": "database_url"},
        )
    name = f"verticals_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except DBAPIError as exc:
        admin.dispose()
        raise InvalidInput(
            f"cannot create a scratch database on {url.render_as_string()}: {exc.orig}",
            {"field": "database_url"},
        ) from None
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _answers(path: str) -> Callable[[str], bool]:
    """Ready as soon as ``path`` answers at all (any status)."""

    def ready(url: str) -> bool:
        import httpx

        return bool(httpx.get(f"{url}{path}").status_code)

    return ready


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send one HTTP/1.1 request on a kept-alive connection, read the whole answer; its status."""
    writer.write(request)
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            await reader.readexactly(size + 2)  # the chunk and its CRLF
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return int(status_line.split()[1])


async def _load(
    url: str, make_body: Callable[[], dict], headers: dict[str, str], clients: int, seconds: float
) -> dict[str, float]:
    """``clients`` workers, one kept-alive connection each, one request at a time, for
    ``seconds``. A lean HTTP/1.1 client on asyncio streams: a general client (httpx) costs a few
    ms of CPU per request and, at 32 connections on 2 cores, measures itself rather than the
    server (the echo reference then collapses)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    ).encode("latin-1")
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < stop:
                body = json.dumps(make_body()).encode()
                request = head + b"Content-Length: %d\r\n\r\n" % len(body) + body
                started = time.perf_counter()
                try:
                    status = await _exchange(reader, writer, request)
                except (ConnectionError, asyncio.IncompleteReadError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - began
    ms = np.array(latencies) * 1000.0
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else float("nan"),
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else float("nan"),
    }


class _Transactions:
    """Fresh transactions over a realistic set of cards and terminals, time moving forward."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.i = 0
        self.t0 = np.datetime64("2018-09-01T00:00:00")

    def __call__(self) -> dict:
        self.i += 1
        ts = self.t0 + np.timedelta64(self.i, "s")
        return {
            "transaction_id": f"bench-{self.i}",
            "tx_datetime": str(ts),
            "customer_id": str(int(self.rng.integers(0, 5000))),
            "terminal_id": str(int(self.rng.integers(0, 10000))),
            "amount": round(float(self.rng.gamma(2.0, 30.0)), 2),
        }


def run_bench(
    *,
    seconds: float = 5.0,
    batch_rows: int = 5000,
    workers: int = 1,
    database_url: str | None = None,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    import httpx
    from verticals.core.serving.provision import launched_server, provision_scratch

    with (
        tempfile.TemporaryDirectory(prefix="verticals-bench-") as tmp,
        _scratch_database(database_url, Path(tmp)) as scratch_url,
    ):
        home = Path(tmp)
        env = {**os.environ, "VERTICALS_HOME": str(home), "VERTICALS_DATABASE_URL": scratch_url}
        key = provision_scratch(home, scratch_url, "finance", ["finance:score"])
        headers = {"Authorization": f"Bearer {key}"}
        results: dict[str, Any] = {
            "mode": "http-loopback",
            "client": "asyncio-http1.1-keepalive",
            "seconds_per_level": seconds,
            "workers": workers,
            "database": make_url(env["VERTICALS_DATABASE_URL"]).get_backend_name(),
        }
        echo_body = _Transactions(1)
        with launched_server(
            "verticals.domains.finance.bench:echo_app", env, _free_port(),
            ready=_answers("/docs"), workers=workers,
        ) as (url, _):
            results["echo"] = {}
            for level in LEVELS:
                out = asyncio.run(_load(f"{url}/echo", echo_body, {}, level, seconds))
                results["echo"][str(level)] = out
                log(f"echo     c={level:<3d} {out}")
        bodies = _Transactions(2)
        with launched_server(
            "verticals.apps.api:create_app", env, _free_port(),
            ready=_answers("/healthz"), workers=workers,
        ) as (url, _):
            score_url = f"{url}/v1/finance/transactions:score"
            asyncio.run(_load(score_url, bodies, headers, 4, 1.0))  # warm-up
            results["finance"] = {}
            for level in LEVELS:
                out = asyncio.run(_load(score_url, bodies, headers, level, seconds))
                results["finance"][str(level)] = out
                log(f"finance  c={level:<3d} {out}")
            rows = [bodies() for _ in range(batch_rows)]
            started = time.perf_counter()
            response = httpx.post(
                f"{url}/v1/finance/transactions:batch",
                json={"transactions": rows},
                headers=headers,
                timeout=600,
            )
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"batch request failed: {response.status_code} {response.text}")
            results["batch_rows"] = batch_rows
            results["batch_rows_per_s"] = round(batch_rows / elapsed, 1)
            log(f"batch    {batch_rows} rows in {elapsed:.2f}s")
    ratios = {
        level: results["finance"][level]["rps"] / max(results["echo"][level]["rps"], 1e-9)
        for level in results["finance"]
    }
    results["ratio_vs_echo"] = {k: round(v, 3) for k, v in ratios.items()}
    results["ratio_at_32"] = results["ratio_vs_echo"]["32"]
    results["p99_ms_at_32"] = results["finance"]["32"]["p99_ms"]
    log(
        f"throughput ratio vs echo at 32 clients: {results['ratio_at_32']:.3f} "
        f"(p99 {results['p99_ms_at_32']} ms); batch {results['batch_rows_per_s']} rows/s"
    )
    return results
