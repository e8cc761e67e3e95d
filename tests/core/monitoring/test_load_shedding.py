"""The load-shedding and error-rate rules: shed (503 + Retry-After) and failed (other 5xx)
requests counted by the HTTP middleware, stored by every replica, judged by the lease holder
over the window, with the alerts' `for`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from verticals.core.db import session_scope
from verticals.core.db.base import utcnow
from verticals.core.errors import ModelUnavailable, Overloaded
from verticals.core.monitoring import traffic
from verticals.core.monitoring.alerts import list_alerts
from verticals.core.monitoring.evaluator import Evaluator
from verticals.core.monitoring.service import evaluate_once
from verticals.core.monitoring.settings import MonitorSettings
from verticals.core.serving.errors import install_error_handlers
from verticals.core.serving.middleware import RequestContextMiddleware


@pytest.fixture(autouse=True)
def _no_leftover_counts():
    traffic.take()  # counts other tests' requests left in this process
    yield
    traffic.take()


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/v1/synth/ok")
    def ok() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/v1/synth/busy")
    def busy() -> None:
        raise Overloaded("queue is full", retry_after_s=2)

    @app.get("/v1/synth/gone")
    def gone() -> None:
        raise ModelUnavailable("not loaded")

    app.add_middleware(RequestContextMiddleware, max_body_bytes=1000)
    return app


def test_middleware_counts_shed_and_failed_requests_of_routed_paths_only() -> None:
    client = TestClient(_app(), raise_server_exceptions=False)
    for path, code in [("ok", 200)] * 3 + [("busy", 503)] * 2 + [("gone", 503)]:
        assert client.get(f"/v1/synth/{path}").status_code == code
    assert client.get("/v1/made-up/path").status_code == 404  # no route: not a domain
    # a 503 without Retry-After (model not loaded) is an error, not shedding
    assert traffic.take() == {"synth": (6, 2, 1)}
    assert traffic.take() == {}


def _alerts(rule: str = "load_shedding") -> list:
    with session_scope() as session:
        return [a for a in list_alerts(session, state="open") if a.rule == rule]


def _shedding_alerts() -> list:
    return _alerts("load_shedding")


def _send(requests: int, shed: int, errors: int = 0) -> None:
    for i in range(requests):
        traffic.count("synth", shed=i < shed, error=shed <= i < shed + errors)


def test_fires_on_shed_requests_from_any_replica_not_on_a_clean_window(synth) -> None:
    settings = MonitorSettings(for_s=60, resolve_for_s=0, traffic_window_s=300)
    holder, other = Evaluator(synth, settings), Evaluator(synth, settings)

    _send(400, 0)  # clean: nothing shed
    assert holder.tick() is True
    _send(400, 4)  # 1 % shed: under the 5 % threshold
    assert other.tick() is False  # not the lease holder, but its counts are stored
    assert holder.tick() is True
    assert _shedding_alerts() == []

    _send(200, 150)  # the other replica sheds: 154 of 1000 in the window
    assert other.tick() is False
    now = utcnow()
    evaluate_once(synth, settings, now=now)
    assert _shedding_alerts() == []  # breached, but not yet for `for_s`
    evaluate_once(synth, settings, now=now + timedelta(seconds=61))
    (alert,) = _shedding_alerts()
    assert alert.domain == "synth" and alert.model == "*" and alert.state == "firing"
    assert alert.value == pytest.approx(154 / 1000)
    assert alert.detail["shed"] == 154 and alert.detail["requests"] == 1000

    # the window moves on: once the shed rows are older than shed_window_s, it resolves
    _send(400, 0)
    with session_scope() as session:
        traffic.flush(session, "replica-c", synth.domains, now=now + timedelta(seconds=400))
    evaluate_once(synth, settings, now=now + timedelta(seconds=400))
    assert _shedding_alerts() == []


def test_too_few_requests_are_not_judged(synth) -> None:
    settings = MonitorSettings(for_s=0, traffic_min_requests=20)
    _send(10, 5, 5)  # every one shed or failed, but only 10
    with session_scope() as session:
        traffic.flush(session, "r", synth.domains)
    evaluate_once(synth, settings)
    assert _alerts("load_shedding") == [] and _alerts("error_rate") == []


def test_error_rate_fires_on_failed_requests_not_on_shed_ones(synth) -> None:
    settings = MonitorSettings(for_s=0)
    _send(500, 100, 10)  # 20 % shed, 2 % failed: shedding only
    with session_scope() as session:
        traffic.flush(session, "r", synth.domains)
    evaluate_once(synth, settings)
    assert len(_alerts("load_shedding")) == 1 and _alerts("error_rate") == []
    _send(500, 0, 60)  # 70 failed of 1,000
    with session_scope() as session:
        traffic.flush(session, "r", synth.domains)
    evaluate_once(synth, settings)
    (alert,) = _alerts("error_rate")
    assert alert.value == pytest.approx(0.07) and alert.detail["errors"] == 70
