from __future__ import annotations

import json

from typer.testing import CliRunner
from verticals.core.db import session_scope
from verticals.core.db.base import utcnow
from verticals.core.monitoring.alerts import Signal, apply_signals
from verticals.core.monitoring.evaluator import Evaluator
from verticals.core.monitoring.settings import MonitorSettings


def _fire() -> int:
    signal = Signal(
        rule="drift",
        domain="finance",
        model="card-fraud-xgb",
        ratio=2,
        value=0.5,
        summary="drift in finance: amount",
    )
    with session_scope() as session:
        (change,) = apply_signals(
            session, [signal], for_s=0, resolve_for_s=0, resolve_ratio=0.8, now=utcnow()
        )
    return change.alert.id


def test_ops_routes_need_their_scopes(client, make_key) -> None:
    reader = {"X-API-Key": make_key(["ops:read"])}
    writer = {"X-API-Key": make_key(["ops:read", "ops:write"])}
    other = {"X-API-Key": make_key(["finance:read"])}
    assert client.get("/v1/ops/alerts", headers=other).status_code == 403
    report = client.get("/v1/ops/drift", params={"domain": "finance"}, headers=reader)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["model"] == "card-fraud-xgb" and body["status"] == "insufficient"
    assert body["window"]["count"] == 0 and body["window"]["reference_count"] > 10_000
    assert client.get("/v1/ops/drift", params={"domain": "nope"}, headers=reader).status_code == 404

    alert_id = _fire()
    listed = client.get("/v1/ops/alerts", params={"state": "open"}, headers=reader).json()
    assert [a["id"] for a in listed] == [alert_id]
    assert client.post(f"/v1/ops/alerts/{alert_id}:ack", headers=reader).status_code == 403
    acked = client.post(f"/v1/ops/alerts/{alert_id}:ack", headers=writer)
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    assert client.post(f"/v1/ops/alerts/{alert_id}:ack", headers=writer).status_code == 409
    assert client.post("/v1/ops/alerts/999:ack", headers=writer).status_code == 404
    # past a 32-bit INTEGER column (PostgreSQL): refused as input, never a database error
    assert client.post(f"/v1/ops/alerts/{2**31}:ack", headers=writer).status_code == 422


def test_monitor_cli_prints_the_report_as_its_last_line(db) -> None:
    from verticals.apps.cli.main import build_cli

    _fire()
    result = CliRunner().invoke(build_cli(), ["monitor", "finance", "--json"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    assert {"domain", "model", "window", "features", "performance", "alerts"} <= set(line)
    assert line["domain"] == "finance" and line["alerts"][0]["rule"] == "drift"


def test_only_the_lease_holder_evaluates(synth, feed) -> None:
    settings = MonitorSettings(webhook_url=None)
    first, second = Evaluator(synth, settings), Evaluator(synth, settings)
    feed.send(300)
    assert first.tick() is True
    assert second.tick() is False
    assert first.tick() is True and first.passes == 2
    first.stop()  # releases the lease
    assert second.tick() is True
