from __future__ import annotations

from datetime import timedelta

import pytest
from verticals.core.db import session_scope
from verticals.core.db.base import utcnow
from verticals.core.errors import Conflict
from verticals.core.monitoring.alerts import Signal, acknowledge, apply_signals, list_alerts


def _signal(ratio: float) -> Signal:
    return Signal(rule="drift", domain="d", model="m", ratio=ratio, value=ratio, summary="s")


def _step(ratio: float, at, **kw):  # noqa: ANN001, ANN003, ANN202
    options = {"for_s": 60.0, "resolve_for_s": 120.0, "resolve_ratio": 0.8, **kw}
    with session_scope() as session:
        return apply_signals(session, [_signal(ratio)], now=at, **options)


def test_fires_after_for_deduplicates_holds_in_the_band_and_resolves(db) -> None:
    t0 = utcnow()
    assert _step(1.5, t0) == []  # pending: not yet held for 60 s
    assert _step(0.5, t0 + timedelta(seconds=30)) == []  # cleared: the clock restarts
    assert _step(1.5, t0 + timedelta(seconds=40)) == []
    (fired,) = _step(1.2, t0 + timedelta(seconds=101))
    assert fired.transition == "firing"
    assert _step(2.0, t0 + timedelta(seconds=160)) == []  # same incident, updated
    # hysteresis: 0.9 is below the threshold but above 0.8 x it: stays open, never clears
    assert _step(0.9, t0 + timedelta(seconds=200)) == []
    assert _step(0.9, t0 + timedelta(seconds=900)) == []
    assert _step(0.5, t0 + timedelta(seconds=1000)) == []  # clear, waiting resolve_for
    (resolved,) = _step(0.5, t0 + timedelta(seconds=1121))
    assert resolved.transition == "resolved" and resolved.alert.id == fired.alert.id
    with session_scope() as session:
        (alert,) = list_alerts(session)
    assert alert.state == "resolved" and alert.resolved_at is not None


def test_acknowledge_records_who_and_only_once(db) -> None:
    (fired,) = _step(3.0, utcnow(), for_s=0.0)
    with session_scope() as session:
        change = acknowledge(session, fired.alert.id, "ops-user")
    assert change.alert.state == "acknowledged" and change.alert.acknowledged_by == "ops-user"
    with session_scope() as session, pytest.raises(Conflict):
        acknowledge(session, fired.alert.id, "ops-user")
    # acknowledged is still open: no second alert while the breach lasts
    assert _step(3.0, utcnow(), for_s=0.0) == []
