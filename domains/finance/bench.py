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
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy.engine import make_url
from verticals.core.serving.loopback import ECHO_FACTORY, scratch_server
from verticals.core.serving.loopback import answers as _answers
from verticals.core.serving.loopback import free_port as _free_port
from verticals.core.serving.loopback import post_load as _load

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
