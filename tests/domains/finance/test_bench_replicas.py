"""``verticals bench finance --workers 1,2 --database-url ...``: the worker counts as parsed, the
summary (scaling factor), the clients spread over the replicas, and (slow, PostgreSQL needed)
one tiny end-to-end run."""

from __future__ import annotations

import asyncio
import os

import pytest
from sqlalchemy import create_engine
from verticals.core.errors import InvalidInput
from verticals.core.serving.loopback import spread_load
from verticals.domains.finance.bench import replica_summary, run_replicas, worker_counts

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}"


@pytest.mark.parametrize(
    ("given", "counts"),
    [(["1"], [1]), (["1,2"], [1, 2]), (["2", "1"], [1, 2]), (["1, 2", "2"], [1, 2]), ([4], [4])],
)
def test_worker_counts_take_lists_and_repeats(given, counts) -> None:
    assert worker_counts(given) == counts


@pytest.mark.parametrize("given", [["0"], ["1,x"], ["-1"], [""], []])
def test_worker_counts_refuse_what_is_not_a_count(given) -> None:
    with pytest.raises(InvalidInput, match="--workers"):
        worker_counts(given)


def test_replica_summary_scales_the_largest_count_over_the_smallest() -> None:
    def load(rps: float) -> dict:
        return {"rps": rps, "p50_ms": 10.0, "p99_ms": 30.0, "requests": 100, "errors": 0}

    summary = replica_summary({2: load(300.0), 1: load(200.0)})
    assert summary["scaling_factor"] == 1.5 and summary["scaling_of"] == "2/1"
    assert list(summary["replicas"]) == ["1", "2"]
    assert summary["replicas"]["2"] == load(300.0)
    assert replica_summary({1: load(0.0), 2: load(5.0)})["scaling_factor"] is None


def test_several_counts_need_a_database_url() -> None:
    from verticals.domains.finance.cli import bench

    with pytest.raises(InvalidInput, match="--database-url"):
        bench(workers=["1,2"], database_url=None, seconds=1.0, batch_rows=1, clients=1)


def test_spread_load_keeps_each_client_on_one_server_round_robin() -> None:
    async def run() -> tuple[dict, list[int]]:
        connections = [0, 0]

        def handler(k: int):  # noqa: ANN202
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                connections[k] += 1
                try:
                    while True:
                        await reader.readuntil(b"\r\n\r\n")
                        writer.write(OK)
                        await writer.drain()
                except (asyncio.IncompleteReadError, ConnectionError):
                    writer.close()

            return handle

        servers = [await asyncio.start_server(handler(k), "127.0.0.1", 0) for k in range(2)]
        urls = [f"http://127.0.0.1:{s.sockets[0].getsockname()[1]}" for s in servers]
        out = await spread_load(urls, lambda: ("GET", "/x", None), {}, 5, 0.3)
        for server in servers:
            server.close()
        return out, connections

    out, connections = asyncio.run(run())
    assert connections == [3, 2]  # clients 0, 2, 4 and 1, 3
    assert out["requests"] > 5 and out["errors"] == 0


def _postgresql() -> str:
    configured = os.environ.get("VERTICALS_TEST_DATABASE_URL", "")
    server = (
        configured
        if configured.startswith("postgresql")
        else "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    engine = create_engine(server, connect_args={"connect_timeout": 2})
    try:
        with engine.connect():
            pass
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "not here"
        pytest.skip(f"PostgreSQL not reachable ({exc.__class__.__name__})")
    finally:
        engine.dispose()
    return server


@pytest.mark.slow
def test_one_and_two_replicas_on_one_scratch_database_end_to_end() -> None:
    lines: list[str] = []
    summary = run_replicas(
        [1, 2], database_url=_postgresql(), seconds=1.0, clients=4, warmup_s=0.3, log=lines.append
    )
    assert set(summary["replicas"]) == {"1", "2"}
    for figures in summary["replicas"].values():
        assert figures["requests"] > 0 and figures["errors"] == 0
        assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    expected = summary["replicas"]["2"]["rps"] / summary["replicas"]["1"]["rps"]
    assert summary["scaling_factor"] == pytest.approx(expected, abs=1e-3)
    assert len(lines) == 3 and lines[-1].startswith("scaling 2/1")
