"""Manufacturing tables: assets, their sensor readings, cached health, dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column
from verticals.core.db.base import Base, utcnow
from verticals.core.db.types import UtcDateTime


class AssetRow(Base):
    """A monitored asset of one tenant: a turbofan or a machine tool."""

    __tablename__ = "manufacturing_assets"
    __table_args__ = (UniqueConstraint("tenant", "asset_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    asset_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    line: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ReadingRow(Base):
    """One cycle of a turbofan: 3 operating settings and 21 sensors, in C-MAPSS order."""

    __tablename__ = "manufacturing_readings"
    __table_args__ = (UniqueConstraint("asset_pk", "cycle"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    asset_pk: Mapped[int] = mapped_column(
        ForeignKey("manufacturing_assets.id", ondelete="CASCADE"), index=True
    )
    cycle: Mapped[int] = mapped_column(Integer)
    values: Mapped[list[float]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class HealthRow(Base):
    """The latest health estimate of an asset: what /health and /fleet answer until new
    readings (or a new model) make it stale."""

    __tablename__ = "manufacturing_health"

    asset_pk: Mapped[int] = mapped_column(
        ForeignKey("manufacturing_assets.id", ondelete="CASCADE"), primary_key=True
    )
    last_cycle: Mapped[int | None] = mapped_column(Integer, nullable=True)
    model_version: Mapped[str] = mapped_column(String(120))
    estimate: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class DeadLetterRow(Base):
    """A message ingestion could not use (bad JSON, a schema error, an unknown asset), kept
    with the reason instead of crashing the subscriber or vanishing."""

    __tablename__ = "manufacturing_dead_letters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(300))
    error: Mapped[str] = mapped_column(Text)
    payload_excerpt: Mapped[str] = mapped_column(Text)
    payload_bytes: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
