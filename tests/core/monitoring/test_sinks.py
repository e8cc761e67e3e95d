from __future__ import annotations

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import select
from verticals.core.db import session_scope
from verticals.core.db.base import utcnow
from verticals.core.monitoring.alerts import Signal, apply_signals
from verticals.core.monitoring.settings import MonitorSettings
from verticals.core.monitoring.sinks import SIGNATURE_HEADER, dispatch
from verticals.core.monitoring.tables import AlertDeliveryRow


@pytest.fixture
def receiver():  # noqa: ANN201
    """A local webhook that fails the first ``fail_first`` posts with 503."""
    state = {"bodies": [], "signatures": [], "fail_first": 1}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if state["fail_first"] > 0:
                state["fail_first"] -= 1
                self.send_response(503)
                self.end_headers()
                return
            state["bodies"].append(body)
            state["signatures"].append(self.headers[SIGNATURE_HEADER])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_port}/hook"
    yield state
    server.shutdown()


def _fire() -> list:
    signal = Signal(rule="drift", domain="d", model="m", ratio=2, value=0.4, summary="drift")
    with session_scope() as session:
        return apply_signals(
            session, [signal], for_s=0, resolve_for_s=0, resolve_ratio=0.8, now=utcnow()
        )


def test_webhook_is_signed_retried_and_recorded(db, receiver) -> None:
    settings = MonitorSettings(
        webhook_url=receiver["url"], webhook_secret="s3cret", webhook_backoff_s=0.01
    )
    changes = _fire()
    outcomes = dispatch(changes, settings)
    assert [o.status for o in outcomes] == ["delivered", "delivered"]
    assert outcomes[1].attempts == 2 and outcomes[1].response_code == 204
    (body,) = receiver["bodies"]
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert receiver["signatures"] == [expected]
    payload = json.loads(body)
    assert payload["transition"] == "firing" and payload["alert"]["summary"] == "drift"
    with session_scope() as session:
        rows = session.scalars(select(AlertDeliveryRow).order_by(AlertDeliveryRow.id)).all()
    assert [(r.sink, r.status, r.attempts) for r in rows] == [
        ("log", "delivered", 1),
        ("webhook", "delivered", 2),
    ]


def test_unreachable_webhook_is_recorded_as_failed(db) -> None:
    settings = MonitorSettings(
        webhook_url="http://127.0.0.1:9/none",
        webhook_attempts=2,
        webhook_backoff_s=0.0,
        webhook_timeout_s=0.5,
    )
    (webhook,) = [o for o in dispatch(_fire(), settings) if o.attempts == 2]
    assert webhook.status == "failed" and webhook.error


def test_a_transition_left_unsent_by_a_dead_replica_is_sent_once(db, receiver) -> None:
    from verticals.core.monitoring.sinks import pump_outbox

    receiver["fail_first"] = 0
    settings = MonitorSettings(webhook_url=receiver["url"], outbox_grace_s=0)
    _fire()  # committed, then the replica died before dispatching it
    assert pump_outbox(MonitorSettings(webhook_url=receiver["url"])) == 0  # still in its grace
    assert pump_outbox(settings) == 1
    (body,) = receiver["bodies"]
    assert json.loads(body)["transition"] == "firing"
    assert pump_outbox(settings) == 0  # sent once
    # a transition dispatched by the replica that recorded it is not sent again
    signal = Signal(rule="drift", domain="d", model="m", ratio=0.1, value=0.0, summary="ok")
    with session_scope() as session:
        changes = apply_signals(
            session, [signal], for_s=0, resolve_for_s=0, resolve_ratio=0.8, now=utcnow()
        )
    assert [c.transition for c in changes] == ["resolved"]
    dispatch(changes, settings)
    assert pump_outbox(settings) == 0 and len(receiver["bodies"]) == 2
