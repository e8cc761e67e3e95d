"""Finance tables: online feature state, scored transactions, labels and the review queue.

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
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
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


class LabelRow(Base):
    """Every label given (the latest one is copied onto the transaction)."""

    __tablename__ = "finance_labels"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant", "transaction_id"],
            ["finance_transactions.tenant", "finance_transactions.transaction_id"],
        ),
        Index("ix_finance_labels_transaction_id", "tenant", "transaction_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(
        String(64), default=DEFAULT_TENANT, server_default=DEFAULT_TENANT
    )
    transaction_id: Mapped[str] = mapped_column(String(64))
    is_fraud: Mapped[bool] = mapped_column(Boolean)
    analyst: Mapped[str | None] = mapped_column(String(100), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    api_key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ReviewItemRow(Base):
    """A transaction waiting for an analyst (decision ``review`` or ``decline``)."""

    __tablename__ = "finance_review_queue"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant", "transaction_id"],
            ["finance_transactions.tenant", "finance_transactions.transaction_id"],
        ),
        Index("ix_finance_review_queue_status_risk", "tenant", "status", "risk"),
    )

    tenant: Mapped[str] = _tenant()
    transaction_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    risk: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
