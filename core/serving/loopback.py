"""What the domain benchmarks share for measuring an API over HTTP on loopback: the reference
server (a bare FastAPI echo), a free port, a scratch database, a readiness check and a lean
HTTP/1.1 load generator.

The load generator is ``clients`` asyncio workers, one kept-alive connection each, one request
at a time (closed loop): a general client (httpx) costs a few ms of CPU per request and, at 32
connections on 2 cores, measures itself rather than the server (the echo reference then
collapses). Each request is ``(method, path, json body or None)`` from a callable, so a bench
can vary the path (an asset id) as well as the body.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy.engine import make_url

HttpRequest = tuple[str, str, Any]  # (method, path, JSON body or None)
ECHO_FACTORY = "verticals.core.serving.loopback:echo_app"
# A benched server's environment: without the per-key and per-tenant rate limits, which would
# otherwise answer most requests 429 at a few clients and measure the limiter, not the server.
UNLIMITED_ENV = {"VERTICALS_RATE_LIMIT": "off", "VERTICALS_TENANT_RATE_LIMIT": "off"}


def echo_app() -> Any:
    """The reference: a bare FastAPI app; POST /echo returns what it is sent, GET /echo a
    small fixed JSON object."""
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/json")

    @app.get("/echo")
    async def echo_get() -> Response:
        return Response(b'{"ok":true}', media_type="application/json")

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def scratch_database(server_url: str | None, home: Path) -> Iterator[str]:
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


@dataclass(frozen=True)
class ScratchServer:
    """What a benchmark needs to start a domain's server on a throwaway home and database."""

    home: Path
    database_url: str
    env: dict[str, str]  # the environment of the server's process
    headers: dict[str, str]  # an API key of the requested scopes


@contextmanager
def scratch_server(
    domain: str, scopes: list[str], database_url: str | None = None
) -> Iterator[ScratchServer]:
    """A temporary home and database (:func:`scratch_database`) with ``domain``'s production
    model registered and a key of ``scopes``; rate limits off in the server's environment,
    since a benchmark measures the domain, not the limiter."""
    from verticals.core.serving.provision import provision_scratch

    with (
        tempfile.TemporaryDirectory(prefix="verticals-bench-") as tmp,
        scratch_database(database_url, Path(tmp)) as scratch_url,
    ):
        home = Path(tmp)
        env = {
            **os.environ,
            "VERTICALS_HOME": str(home),
            "VERTICALS_DATABASE_URL": scratch_url,
            **UNLIMITED_ENV,
        }
        key = provision_scratch(home, scratch_url, domain, scopes)
        yield ScratchServer(home, scratch_url, env, {"Authorization": f"Bearer {key}"})


def answers(path: str) -> Callable[[str], bool]:
    """A ``ready`` check: ready as soon as ``path`` answers at all (any status)."""

    def ready(url: str) -> bool:
        import httpx

        return bool(httpx.get(f"{url}{path}").status_code)

    return ready


async def exchange(
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


def _encode(method: str, path: str, body: Any, host_headers: bytes) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\n".encode("latin-1") + host_headers
    if body is None:
        return head + b"\r\n"
    data = json.dumps(body).encode()
    return head + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(data) + data


async def http_load(
    base_url: str,
    make_request: Callable[[], HttpRequest],
    headers: dict[str, str],
    clients: int,
    seconds: float,
) -> dict[str, float]:
    """``clients`` workers send ``make_request()`` to ``base_url`` back to back for ``seconds``:
    requests, errors (non-200 answers and dropped connections), rps, p50/p99 latency in ms."""
    return await spread_load([base_url], make_request, headers, clients, seconds)


async def spread_load(
    base_urls: Sequence[str],
    make_request: Callable[[], HttpRequest],
    headers: dict[str, str],
    clients: int,
    seconds: float,
) -> dict[str, float]:
    """:func:`http_load` over several servers (replicas of one API): worker ``i`` keeps its
    connection to ``base_urls[i % len(base_urls)]``, so the clients are spread round-robin.
    One set of figures for them all."""
    if not base_urls:
        raise ValueError("base_urls must name at least one server")
    targets = []
    for base_url in base_urls:
        parts = urlsplit(base_url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        host_headers = (
            f"Host: {host}:{port}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        ).encode("latin-1")
        targets.append((host, port, parts.path.rstrip("/"), host_headers))
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        nonlocal errors
        host, port, prefix, host_headers = targets[i % len(targets)]
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < stop:
                method, path, body = make_request()
                request = _encode(method, prefix + path, body, host_headers)
                started = time.perf_counter()
                try:
                    status = await exchange(reader, writer, request)
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
    await asyncio.gather(*(worker(i) for i in range(clients)))
    elapsed = time.perf_counter() - began
    ms = np.array(latencies) * 1000.0
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else float("nan"),
        "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else float("nan"),
    }


async def post_load(
    url: str, make_body: Callable[[], Any], headers: dict[str, str], clients: int, seconds: float
) -> dict[str, float]:
    """:func:`http_load` of ``POST url`` with a JSON body from ``make_body()``."""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}"
    return await http_load(
        base, lambda: ("POST", parts.path, make_body()), headers, clients, seconds
    )
