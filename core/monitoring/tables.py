"""Monitoring tables on core's metadata (migration ``core_0005``): the evaluator's lease, rule
state (for ``for`` durations and hysteresis), alerts with their lifecycle, webhook deliveries and
drift points (the history the Operations page plots)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column
from verticals.core.db.base import Base, utcnow
from verticals.core.db.types import UtcDateTime


class MonitorLeaseRow(Base):
    """Who runs the evaluator: one holder per lease name, until ``expires_at``."""

    __tablename__ = "monitor_leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())


class RuleStateRow(Base):
    """Since when a rule's condition has held (``breach_since``) or has been clear
    (``clear_since``): what ``for`` durations are measured from."""

    __tablename__ = "monitor_rule_states"

    fingerprint: Mapped[str] = mapped_column(String(300), primary_key=True)
    breach_since: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    clear_since: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class AlertRow(Base):
    """One incident: firing, then acknowledged (by whom), then resolved. At most one open
    (not resolved) alert per fingerprint: a rule that keeps firing updates it."""

    __tablename__ = "monitor_alerts"
    __table_args__ = (Index("ix_monitor_alerts_fingerprint_state", "fingerprint", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(300))
    rule: Mapped[str] = mapped_column(String(64))
    domain: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(120))
    state: Mapped[str] = mapped_column(String(16))  # firing | acknowledged | resolved
    severity: Mapped[str] = mapped_column(String(16), default="warning")
    summary: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class AlertDeliveryRow(Base):
    """One transition sent to one sink, with the outcome of the last attempt."""

    __tablename__ = "monitor_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("monitor_alerts.id", ondelete="CASCADE"))
    sink: Mapped[str] = mapped_column(String(32))
    transition: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # delivered | failed
    attempts: Mapped[int] = mapped_column(Integer)
    response_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class DriftPointRow(Base):
    """One statistic of one feature at one evaluation (the Operations page's lines)."""

    __tablename__ = "monitor_drift_points"
    __table_args__ = (Index("ix_monitor_drift_points_model", "domain", "model", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(120))
    feature: Mapped[str] = mapped_column(String(120))
    statistic: Mapped[str] = mapped_column(String(32))
    value: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    window_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class TrafficRow(Base):
    """One replica's requests, shed (503 + Retry-After) and failed (other 5xx) requests of one
    domain over one evaluator interval (migration ``core_0005b``; see ``traffic.py``)."""

    __tablename__ = "monitor_traffic"
    __table_args__ = (Index("ix_monitor_traffic_created", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    replica: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str] = mapped_column(String(64))
    requests: Mapped[int] = mapped_column(Integer)
    shed: Mapped[int] = mapped_column(Integer)
    errors: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class OutboxRow(Base):
    """An alert transition to send, written in the same transaction as the transition (migration
    ``core_0005b``): a replica that dies between committing an alert and posting it leaves the
    row unsent, and the next evaluator pass sends it (at least once, never lost)."""

    __tablename__ = "monitor_outbox"
    __table_args__ = (Index("ix_monitor_outbox_unsent", "sent_at", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("monitor_alerts.id", ondelete="CASCADE"))
    change: Mapped[dict[str, Any]] = mapped_column(JSON)  # the Change, as sent
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
