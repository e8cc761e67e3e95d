"""Shadow predictions (migration ``core_0007``): what a staged challenger answered for live
traffic the champion served, recorded beside the champion's answer and never returned."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column
from verticals.core.auth import DEFAULT_TENANT
from verticals.core.db.base import Base, utcnow
from verticals.core.db.types import UtcDateTime


class ShadowPredictionRow(Base):
    """One live subject scored in shadow by one challenger version."""

    __tablename__ = "shadow_predictions"
    __table_args__ = (
        UniqueConstraint(
            "domain", "model", "version", "tenant", "subject", name="uq_shadow_predictions_subject"
        ),
        Index("ix_shadow_predictions_served", "domain", "model", "version", "served_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(
        String(64), default=DEFAULT_TENANT, server_default=DEFAULT_TENANT
    )
    domain: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(120))
    version: Mapped[str] = mapped_column(String(120))  # the challenger's
    subject: Mapped[str] = mapped_column(String(200))  # the domain's id of the scored thing
    score: Mapped[float] = mapped_column(Float)
    champion_version: Mapped[str | None] = mapped_column(String(120), nullable=True)
    champion_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    # when the champion served the subject: where the next shadow run resumes
    served_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
