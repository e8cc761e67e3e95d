"""``verticals bench finance``: the scoring API against a bare FastAPI echo endpoint, over HTTP.

Both servers run as uvicorn subprocesses on 127.0.0.1 (``workers`` processes each, default 1)
and are driven by the same asyncio load generator in this process (HTTP/1.1 keep-alive), one
after the other, at 1, 8 and 32 concurrent clients. The finance server uses a temporary home
folder, a temporary SQLite database (or, with ``database_url``, a scratch database on that
PostgreSQL server: the setup for several workers, as SQLite serialises writers across
processes), the shipped model, and does everything a real request does (online state update,
transaction row, audit record).

With several worker counts (``--workers 1,2``) and a PostgreSQL server, :func:`run_replicas`
measures scale-out instead: ``n`` separate API processes (replicas, each on its own port, one
shared scratch home and database as in a deployment) driven by one closed-loop load whose
clients are spread round-robin over them, for each ``n`` in turn, and the throughput of the
largest count over the smallest (the scaling factor).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import Any

import numpy as np
from sqlalchemy.engine import make_url
from verticals.core.serving.loopback import ECHO_FACTORY, scratch_server, spread_load
from verticals.core.serving.loopback import answers as _answers
from verticals.core.serving.loopback import free_port as _free_port
from verticals.core.serving.loopback import post_load as _load

SCORE_PATH = "/v1/finance/transactions:score"

LEVELS = (1, 8, 32)


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
    from verticals.core.serving.provision import launched_server

    with scratch_server("finance", ["finance:score"], database_url) as scratch:
        env, headers = scratch.env, scratch.headers
        results: dict[str, Any] = {
            "mode": "http-loopback",
            "client": "asyncio-http1.1-keepalive",
            "seconds_per_level": seconds,
            "workers": workers,
            "database": make_url(env["VERTICALS_DATABASE_URL"]).get_backend_name(),
        }
        echo_body = _Transactions(1)
        with launched_server(
            ECHO_FACTORY,
            env,
            _free_port(),
            ready=_answers("/docs"),
            workers=workers,
        ) as (url, _):
            results["echo"] = {}
            for level in LEVELS:
                out = asyncio.run(_load(f"{url}/echo", echo_body, {}, level, seconds))
                results["echo"][str(level)] = out
                log(f"echo     c={level:<3d} {out}")
        bodies = _Transactions(2)
        with launched_server(
            "verticals.apps.api:create_app",
            env,
            _free_port(),
            ready=_answers("/healthz"),
            workers=workers,
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


def worker_counts(values: Iterable[str | int]) -> list[int]:
    """``--workers`` as given, once or several times, each a count or a comma-separated list
    (``1,2``): distinct counts >= 1, ascending."""
    from verticals.core.errors import InvalidInput

    counts: set[int] = set()
    for value in values:
        for part in str(value).split(","):
            try:
                count = int(part.strip())
            except ValueError:
                raise InvalidInput(
                    f"--workers takes counts such as 1 or 1,2; got {value!r}", {"field": "workers"}
                ) from None
            if count < 1:
                raise InvalidInput(
                    f"--workers counts must be >= 1, got {count}", {"field": "workers"}
                )
            counts.add(count)
    if not counts:
        raise InvalidInput("--workers needs at least one count", {"field": "workers"})
    return sorted(counts)


def replica_summary(loads: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Per replica count its throughput and p50/p99 (from :func:`spread_load`), and the scaling
    factor: throughput at the largest count over throughput at the smallest."""
    counts = sorted(loads)
    base = loads[counts[0]]["rps"]
    return {
        "replicas": {
            str(n): {k: loads[n][k] for k in ("rps", "p50_ms", "p99_ms", "requests", "errors")}
            for n in counts
        },
        "scaling_factor": round(loads[counts[-1]]["rps"] / base, 3) if base > 0 else None,
        "scaling_of": f"{counts[-1]}/{counts[0]}",
    }


def run_replicas(
    counts: list[int],
    *,
    database_url: str,
    seconds: float = 5.0,
    clients: int = 32,
    warmup_s: float = 1.0,
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """For each count ``n`` (ascending), ``n`` finance API replicas (separate uvicorn processes,
    one worker each) on one scratch PostgreSQL database created on ``database_url``'s server and
    dropped afterwards, and one scratch home; ``clients`` closed-loop clients spread over them
    for ``seconds``. A replica started for a smaller count serves the larger ones too; each new
    one is warmed up first (``warmup_s`` of load)."""
    from verticals.core.serving.provision import launched_server

    if len(counts) < 1 or counts != sorted(set(counts)):
        raise ValueError(f"counts must be distinct and ascending, got {counts}")
    bodies = _Transactions(3)
    loads: dict[int, dict[str, Any]] = {}
    with (
        scratch_server("finance", ["finance:score"], database_url) as scratch,
        ExitStack() as stack,
    ):
        urls: list[str] = []
        for n in counts:
            fresh = [
                stack.enter_context(
                    launched_server(
                        "verticals.apps.api:create_app",
                        scratch.env,
                        _free_port(),
                        ready=_answers("/healthz"),
                    )
                )[0]
                for _ in range(n - len(urls))
            ]
            if fresh and warmup_s > 0:
                warm = 2 * len(fresh)
                asyncio.run(_spread(fresh, bodies, scratch.headers, warm, warmup_s))
            urls += fresh
            loads[n] = asyncio.run(_spread(urls, bodies, scratch.headers, clients, seconds))
            log(f"replicas={n:<2d} c={clients:<3d} {loads[n]}")
    summary = {
        "mode": "http-loopback-replicas",
        "client": "asyncio-http1.1-keepalive",
        "database": "postgresql",
        "clients": clients,
        "seconds_per_count": seconds,
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),  # other work on the box, if any
        **replica_summary(loads),
    }
    log(
        f"scaling {summary['scaling_of']} replicas: {summary['scaling_factor']}x "
        f"on {summary['cpu_count']} CPU cores (load generator and PostgreSQL included; "
        f"load average {summary['load_average_1m']})"
    )
    return summary


async def _spread(
    urls: list[str], bodies: Callable[[], dict], headers: dict[str, str], clients: int, s: float
) -> dict[str, Any]:
    return await spread_load(urls, lambda: ("POST", SCORE_PATH, bodies()), headers, clients, s)
