"""Finance tables: online feature state and scored transactions (labels and the review queue
are core's labeling queue: ``label_items`` of the fraud model, by transaction id).

Every row belongs to a tenant (a bank), and every key starts with it: the primary keys are
(tenant, transaction_id), (tenant, customer_id), (tenant, terminal_id). Two banks may use the
same transaction or card ids and never see, replay or share each other's rows or state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column
from verticals.core.db.base import Base, utcnow
from verticals.core.db.types import UtcDateTime

DEFAULT_TENANT = "default"  # verticals.core.auth.DEFAULT_TENANT (domains import no core auth)


def _tenant() -> Mapped[str]:
    return mapped_column(
        String(64), primary_key=True, default=DEFAULT_TENANT, server_default=DEFAULT_TENANT
    )


class CustomerStateRow(Base):
    """Day buckets of one customer's transactions (see ``features``)."""

    __tablename__ = "finance_customer_state"

    tenant: Mapped[str] = _tenant()
    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    buckets: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class TerminalStateRow(Base):
    __tablename__ = "finance_terminal_state"

    tenant: Mapped[str] = _tenant()
    terminal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    buckets: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class TransactionRow(Base):
    """One scored transaction and the answer given (replayed on an idempotent retry)."""

    __tablename__ = "finance_transactions"
    __table_args__ = (
        Index("ix_finance_transactions_customer_ts", "tenant", "customer_id", "ts"),
        Index("ix_finance_transactions_terminal_ts", "tenant", "terminal_id", "ts"),
    )

    tenant: Mapped[str] = _tenant()
    transaction_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tx_datetime: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    ts: Mapped[int] = mapped_column(BigInteger)
    customer_id: Mapped[str] = mapped_column(String(64))
    terminal_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[float] = mapped_column(Float)
    fraud_probability: Mapped[float] = mapped_column(Float)
    decision: Mapped[str] = mapped_column(String(16))
    model_version: Mapped[str] = mapped_column(String(120))
    input_sha256: Mapped[str] = mapped_column(String(64))
    features: Mapped[list[float | None]] = mapped_column(JSON)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    label: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
