"""Alert rules' state machine and the alert lifecycle: firing -> acknowledged -> resolved.

Each evaluation turns every rule into a :class:`Signal` whose ``ratio`` is how far the watched
value is past its threshold (1.0 = at it). A signal with ratio >= 1 is a breach; it fires once
the breach has held ``for_s``. An open alert resolves only when the ratio stays below
``resolve_ratio`` (hysteresis) for ``resolve_for_s``; in between nothing changes, so a value
hovering at the threshold does not flap. One fingerprint has at most one open alert (de-duplicated).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from verticals.core.db.base import utcnow
from verticals.core.errors import Conflict, NotFound
from verticals.core.monitoring.tables import AlertDeliveryRow, AlertRow, OutboxRow, RuleStateRow

OPEN_STATES = ("firing", "acknowledged")
Transition = Literal["firing", "acknowledged", "resolved"]


class Signal(BaseModel):
    rule: str  # drift | performance_<metric> | latency | error_rate | load_shedding
    domain: str
    model: str
    ratio: float
    value: float
    summary: str
    detail: dict[str, Any] = {}
    severity: str = "warning"

    @property
    def fingerprint(self) -> str:
        return f"{self.rule}:{self.domain}:{self.model}"


class AlertOut(BaseModel):
    id: int
    fingerprint: str
    rule: str
    domain: str
    model: str
    state: str
    severity: str
    summary: str
    detail: dict[str, Any]
    value: float | None
    started_at: datetime
    updated_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None


class DeliveryOut(BaseModel):
    id: int
    alert_id: int
    sink: str
    transition: str
    status: str
    attempts: int
    response_code: int | None
    error: str | None
    created_at: datetime


class Change(BaseModel):
    """A transition to send to the sinks; ``outbox_id``: its row in the outbox (marked sent once
    the sinks have had it)."""

    transition: Transition
    alert: AlertOut
    outbox_id: int | None = None


def _recorded(session: Session, change: Change) -> Change:
    """The change, written to the outbox in the transition's own transaction."""
    row = OutboxRow(
        alert_id=change.alert.id,
        change=change.model_dump(mode="json", exclude={"outbox_id"}),
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    change.outbox_id = row.id
    return change


def alert_out(row: AlertRow) -> AlertOut:
    return AlertOut.model_validate(row, from_attributes=True)


def _open_alert(session: Session, fingerprint: str) -> AlertRow | None:
    return session.scalar(
        select(AlertRow)
        .where(AlertRow.fingerprint == fingerprint, AlertRow.state.in_(OPEN_STATES))
        .order_by(AlertRow.id.desc())
    )


def apply_signals(
    session: Session,
    signals: list[Signal],
    *,
    for_s: float,
    resolve_for_s: float,
    resolve_ratio: float,
    now: datetime | None = None,
) -> list[Change]:
    """Advance every rule's state by one evaluation; return the alert transitions."""
    now = now or utcnow()
    changes: list[Change] = []
    for signal in signals:
        state = session.get(RuleStateRow, signal.fingerprint)
        if state is None:
            state = RuleStateRow(fingerprint=signal.fingerprint)
            session.add(state)
        state.value, state.updated_at = signal.value, now
        alert = _open_alert(session, signal.fingerprint)
        if signal.ratio >= 1.0:
            state.clear_since = None
            state.breach_since = state.breach_since or now
            if alert is not None:
                alert.value, alert.summary, alert.detail = (
                    signal.value,
                    signal.summary,
                    signal.detail,
                )
                alert.updated_at = now
            elif now - state.breach_since >= timedelta(seconds=for_s):
                alert = AlertRow(
                    fingerprint=signal.fingerprint,
                    rule=signal.rule,
                    domain=signal.domain,
                    model=signal.model,
                    state="firing",
                    severity=signal.severity,
                    summary=signal.summary,
                    detail=signal.detail,
                    value=signal.value,
                    started_at=now,
                    updated_at=now,
                )
                session.add(alert)
                session.flush()
                changes.append(
                    _recorded(session, Change(transition="firing", alert=alert_out(alert)))
                )
                from verticals.core.labeling.jobs import queue_retrain_for_alert  # the loop

                queue_retrain_for_alert(session, alert)  # drift/performance: a retrain queued
        elif signal.ratio < resolve_ratio:
            state.breach_since = None
            state.clear_since = state.clear_since or now
            if alert is not None and now - state.clear_since >= timedelta(seconds=resolve_for_s):
                alert.state, alert.resolved_at, alert.updated_at = "resolved", now, now
                alert.value, alert.summary = signal.value, f"resolved: {signal.summary}"
                session.flush()
                changes.append(
                    _recorded(session, Change(transition="resolved", alert=alert_out(alert)))
                )
        else:  # between the two: hold whatever holds (hysteresis band)
            state.clear_since = None
            if alert is None:
                state.breach_since = None
    session.flush()
    return changes


def acknowledge(session: Session, alert_id: int, by: str) -> Change:
    row = session.get(AlertRow, alert_id)
    if row is None:
        raise NotFound(f"no alert {alert_id}", {"alert_id": alert_id})
    if row.state != "firing":
        raise Conflict(
            f"alert {alert_id} is {row.state}; only a firing alert can be acknowledged",
            {"alert_id": alert_id, "state": row.state},
        )
    now = utcnow()
    row.state, row.acknowledged_by, row.acknowledged_at, row.updated_at = (
        "acknowledged",
        by,
        now,
        now,
    )
    session.flush()
    return _recorded(session, Change(transition="acknowledged", alert=alert_out(row)))


def list_alerts(
    session: Session,
    *,
    state: str | None = None,
    domain: str | None = None,
    model: str | None = None,
    limit: int = 100,
) -> list[AlertOut]:
    query = select(AlertRow).order_by(AlertRow.id.desc()).limit(limit)
    if state == "open":
        query = query.where(AlertRow.state.in_(OPEN_STATES))
    elif state is not None:
        query = query.where(AlertRow.state == state)
    if domain is not None:
        query = query.where(AlertRow.domain == domain)
    if model is not None:
        query = query.where(AlertRow.model == model)
    return [alert_out(row) for row in session.scalars(query)]


def list_deliveries(session: Session, limit: int = 50) -> list[DeliveryOut]:
    query = select(AlertDeliveryRow).order_by(AlertDeliveryRow.id.desc()).limit(limit)
    return [DeliveryOut.model_validate(r, from_attributes=True) for r in session.scalars(query)]
