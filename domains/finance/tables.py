"""Finance tables: online feature state, scored transactions, labels and the review queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column
from verticals.core.db.base import Base, utcnow
from verticals.core.db.types import UtcDateTime


class CustomerStateRow(Base):
    """Day buckets of one customer's transactions (see ``features``)."""

    __tablename__ = "finance_customer_state"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    buckets: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class TerminalStateRow(Base):
    __tablename__ = "finance_terminal_state"

    terminal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    buckets: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class TransactionRow(Base):
    """One scored transaction and the answer given (replayed on an idempotent retry)."""

    __tablename__ = "finance_transactions"
    __table_args__ = (
        Index("ix_finance_transactions_customer_ts", "customer_id", "ts"),
        Index("ix_finance_transactions_terminal_ts", "terminal_id", "ts"),
    )

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

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[str] = mapped_column(
        ForeignKey("finance_transactions.transaction_id"), index=True
    )
    is_fraud: Mapped[bool] = mapped_column(Boolean)
    analyst: Mapped[str | None] = mapped_column(String(100), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    api_key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ReviewItemRow(Base):
    """A transaction waiting for an analyst (decision ``review`` or ``decline``)."""

    __tablename__ = "finance_review_queue"
    __table_args__ = (Index("ix_finance_review_queue_status_risk", "status", "risk"),)

    transaction_id: Mapped[str] = mapped_column(
        ForeignKey("finance_transactions.transaction_id"), primary_key=True
    )
    risk: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
