"""Labeling tables on core's metadata (migration ``core_0006``): one annotation queue for every
domain, the annotations people give, and the retraining jobs the loop queues.

An item is one thing a domain wants labelled (a transaction, a study, a machine's outcome),
named by the domain's own id (``subject``); several people may annotate it, and the item keeps
the accepted label (the majority, ties to the newest) and the agreement among them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column
from verticals.core.auth import DEFAULT_TENANT
from verticals.core.db.base import Base, utcnow
from verticals.core.db.types import UtcDateTime

ITEM_STATUSES = ("pending", "assigned", "labelled", "closed")
JOB_STATUSES = ("queued", "running", "promoted", "staged", "failed")


class LabelItemRow(Base):
    """One thing waiting for (or given) a label, with why it was queued."""

    __tablename__ = "label_items"
    __table_args__ = (
        UniqueConstraint("tenant", "domain", "model", "subject", name="uq_label_items_subject"),
        Index("ix_label_items_queue", "tenant", "domain", "status", "priority"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(
        String(64), default=DEFAULT_TENANT, server_default=DEFAULT_TENANT
    )
    domain: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(120))
    subject: Mapped[str] = mapped_column(String(200))  # the domain's id of the labelled thing
    # what a retrain needs that no domain row keeps (e.g. a machine reading scored once)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    prediction_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(120), nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)  # model output when queued
    priority: Mapped[float] = mapped_column(Float, default=0.0)
    strategy: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    assigned_to: Mapped[str | None] = mapped_column(String(100), nullable=True)
    assigned_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    label: Mapped[str | None] = mapped_column(String(120), nullable=True)  # accepted label
    annotations: Mapped[int] = mapped_column(Integer, default=0)
    agreement: Mapped[float | None] = mapped_column(Float, nullable=True)
    # confident learning: how strongly out-of-fold predictions disagree with the label
    issue_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    second_review: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    labelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class LabelAnnotationRow(Base):
    """One label one person gave one item (every one is kept)."""

    __tablename__ = "label_annotations"
    __table_args__ = (Index("ix_label_annotations_item", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("label_items.id", ondelete="CASCADE"))
    tenant: Mapped[str] = mapped_column(
        String(64), default=DEFAULT_TENANT, server_default=DEFAULT_TENANT
    )
    label: Mapped[str] = mapped_column(String(120))
    labeller: Mapped[str | None] = mapped_column(String(100), nullable=True)
    role: Mapped[str | None] = mapped_column(String(40), nullable=True)
    api_key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class RetrainJobRow(Base):
    """A retraining run asked for (by a person, the schedule or an alert), run by a worker
    outside the API process, with its outcome (promoted, or staged with the reason)."""

    __tablename__ = "retrain_jobs"
    __table_args__ = (Index("ix_retrain_jobs_status", "status", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(120), nullable=True)
    trigger: Mapped[str] = mapped_column(String(16))  # manual | schedule | alert
    alert_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
