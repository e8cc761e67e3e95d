"""The domain's tables, on core's metadata; created by its own Alembic branch (migrations/)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column
from verticals.core.db import Base
from verticals.core.db.base import utcnow


class EchoNote(Base):
    """A note a user or client leaves; tenant-scoped like every domain row."""

    __tablename__ = "echo_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    author: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
