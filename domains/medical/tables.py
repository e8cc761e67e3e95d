"""The medical domain's tables: studies and clinician reviews (feedback for retraining).

Nothing here holds patient data: studies keep de-identified UIDs and technical metadata only.
Every row belongs to a tenant (a hospital). Study ids are random (uuid4, made by the server),
so they stay the primary key; every read filters by the caller's tenant as well.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column
from verticals.core.db.base import Base, utcnow
from verticals.core.db.types import UtcDateTime

DEFAULT_TENANT = "default"  # verticals.core.auth.DEFAULT_TENANT


def _tenant() -> Mapped[str]:
    return mapped_column(String(64), default=DEFAULT_TENANT, server_default=DEFAULT_TENANT)


class StudyRow(Base):
    __tablename__ = "medical_studies"
    __table_args__ = (
        Index("ix_medical_studies_created", "created_at"),
        Index("ix_medical_studies_tenant_created", "tenant", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = _tenant()
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    api_key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    task: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="predicted")
    model_version: Mapped[str] = mapped_column(String(120))
    positive_label: Mapped[str] = mapped_column(String(120))
    probability: Mapped[float] = mapped_column(Float)
    predicted_label: Mapped[str] = mapped_column(String(120))
    finding: Mapped[str] = mapped_column(String(120))
    in_scope: Mapped[bool] = mapped_column(default=True, server_default=true())
    ood_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    threshold: Mapped[float] = mapped_column(Float, default=0.5)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    source_kind: Mapped[str] = mapped_column(String(16))
    modality: Mapped[str | None] = mapped_column(String(16), nullable=True)
    body_part: Mapped[str | None] = mapped_column(String(64), nullable=True)
    rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[int] = mapped_column(Integer)
    window_center: Mapped[float] = mapped_column(Float)
    window_width: Mapped[float] = mapped_column(Float)
    study_uid: Mapped[str] = mapped_column(String(64))
    series_uid: Mapped[str] = mapped_column(String(64))
    sop_instance_uid: Mapped[str] = mapped_column(String(64))
    sop_class_uid: Mapped[str] = mapped_column(String(64))
    notes: Mapped[list[str]] = mapped_column(JSON, default=list)
    storage_dir: Mapped[str] = mapped_column(Text)
    # what monitoring reads (domains/medical/monitoring.py): the model input's intensity
    # statistics and an embedding projection; NULL for studies stored before medical_0004
    image_summary: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True
    )
