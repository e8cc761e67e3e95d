"""The manufacturing bench: what it sends (always new cycles, GETs without a body), and a short
run end to end over HTTP with its JSON shape."""

from __future__ import annotations

import asyncio
import json

import pytest
from verticals.core.serving.loopback import http_load
from verticals.domains.manufacturing.bench import (
    INGEST_ASSETS,
    PREFIX,
    _Cycles,
    _queries,
    bench_command,
)
from verticals.domains.manufacturing.schemas import ReadingsIn


def test_ingestion_requests_always_carry_new_cycles_in_the_routes_schema() -> None:
    shared = dict.fromkeys(range(1, INGEST_ASSETS + 1), 1)
    seen: set[tuple[str, int]] = set()
    for make in (_Cycles(1, shared), _Cycles(50, shared)):
        for _ in range(2 * INGEST_ASSETS):
            method, path, body = make()
            assert method == "POST" and path.startswith(f"{PREFIX}/assets/bench-")
            batch = ReadingsIn.model_validate(body).readings
            assert len(batch) == make.batch
            for reading in batch:
                assert (path, reading.cycle) not in seen
                seen.add((path, reading.cycle))


def test_health_queries_cycle_over_the_demo_engines() -> None:
    health, fleet = _queries("health"), _queries("fleet")
    assert [health()[1] for _ in range(13)][::12] == [f"{PREFIX}/assets/unit-1/health"] * 2
    assert fleet() == ("GET", f"{PREFIX}/fleet", None)


def test_gets_are_sent_without_a_body() -> None:
    seen: list[bytes] = []

    async def run() -> dict[str, float]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    seen.append(await reader.readuntil(b"\r\n\r\n"))
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await http_load(
                f"http://127.0.0.1:{port}",
                lambda: ("GET", "/v1/manufacturing/fleet", None),
                {"Authorization": "Bearer k"},
                clients=2,
                seconds=0.2,
            )

    out = asyncio.run(run())
    assert out["requests"] == len(seen) > 2 and out["errors"] == 0
    assert seen[0].startswith(b"GET /v1/manufacturing/fleet HTTP/1.1\r\n")
    assert b"Authorization: Bearer k\r\n" in seen[0] and b"Content-Length" not in seen[0]


@pytest.mark.slow
def test_a_short_run_reports_rates_and_ratios_as_json(capsys) -> None:
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()
    app.command()(bench_command(None))
    result = CliRunner().invoke(
        app, ["--seconds", "0.3", "--clients", "2", "--batch", "1", "--batch", "5", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["mode"] == "http-loopback" and out["database"] == "sqlite"
    assert set(out["echo"]) == {"post_1", "post_5", "get"}
    served = out["manufacturing"]
    for batch in (1, 5):
        ingest = served[f"ingest_{batch}"]
        assert ingest["errors"] == 0 and ingest["rps"] > 0
        assert ingest["readings_per_s"] == pytest.approx(ingest["rps"] * batch, rel=0.01)
        assert out["readings_per_s"][str(batch)] == ingest["readings_per_s"]
        assert out["ratio_vs_echo"][f"ingest_{batch}"] > 0
    for kind in ("health", "fleet"):
        if out["health_unavailable"] is None:  # the shipped RUL model is there
            assert served[kind]["errors"] == 0 and served[kind]["rps"] > 0
            assert out["ratio_vs_echo"][kind] > 0
        else:
            assert "503" in out["health_unavailable"]
            assert served[kind] is None and out["ratio_vs_echo"][kind] is None
