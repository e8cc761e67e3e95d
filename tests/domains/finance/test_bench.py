"""The bench's load generator (a lean HTTP/1.1 keep-alive client, no server of ours needed) and
its scratch databases."""

from __future__ import annotations

import asyncio
import os

import pytest
from sqlalchemy import create_engine, make_url, text
from verticals.core.errors import InvalidInput
from verticals.core.serving.loopback import scratch_database as _scratch_database
from verticals.domains.finance.bench import _load


async def _serve_and_load(response: bytes, status_ok: bool) -> dict[str, float]:
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                seen.append(head + await reader.readexactly(length))
                writer.write(response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        out = await _load(
            f"http://127.0.0.1:{port}/v1/x:score",
            lambda: {"amount": 1.5},
            {"Authorization": "Bearer k"},
            clients=3,
            seconds=0.3,
        )
    assert seen and seen[0].startswith(b"POST /v1/x:score HTTP/1.1\r\n")
    assert b"Authorization: Bearer k\r\n" in seen[0] and seen[0].endswith(b'{"amount": 1.5}')
    assert out["requests"] == len(seen)
    assert out["errors"] == (0 if status_ok else out["requests"])
    return out


def test_load_counts_kept_alive_requests_and_latencies() -> None:
    ok = b'HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}'
    out = asyncio.run(_serve_and_load(ok, True))
    assert out["requests"] > 3 and out["rps"] > 0 and 0 < out["p50_ms"] <= out["p99_ms"]


def test_load_reads_chunked_answers_and_counts_non_200_as_errors() -> None:
    chunked = b"HTTP/1.1 503 Busy\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    out = asyncio.run(_serve_and_load(chunked, False))
    assert out["requests"] > 3


def test_scratch_database_is_sqlite_in_the_home_by_default(tmp_path):
    with _scratch_database(None, tmp_path) as url:
        assert url == f"sqlite:///{tmp_path / 'bench.db'}"


def test_scratch_database_refuses_a_non_postgresql_url(tmp_path):
    with pytest.raises(InvalidInput, match="PostgreSQL"), _scratch_database(
        "sqlite:///elsewhere.db", tmp_path
    ):
        pass


@pytest.mark.skipif(
    not os.environ.get("VERTICALS_TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="needs a PostgreSQL server (VERTICALS_TEST_DATABASE_URL)",
)
def test_scratch_postgresql_database_is_created_and_dropped(tmp_path):
    server = os.environ["VERTICALS_TEST_DATABASE_URL"]
    engine = create_engine(server)

    def databases() -> set[str]:
        with engine.connect() as connection:
            return set(connection.scalars(text("SELECT datname FROM pg_database")))

    try:
        with _scratch_database(server, tmp_path) as url:
            name = make_url(url).database
            assert name in databases()
            with create_engine(url).connect() as connection:
                assert connection.scalar(text("SELECT current_database()")) == name
        assert name not in databases()
    finally:
        engine.dispose()
