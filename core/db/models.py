"""Core tables: tenants, API keys, dashboard users and their sessions, the prediction record and the
action log (audit), model versions and their derived artifacts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from verticals.core.db.base import Base, utcnow
from verticals.core.db.types import UtcDateTime


class TenantRow(Base):
    """An organisation (a bank, a hospital, a plant): every key and domain row belongs to one."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    # a tenants.name, checked when the key is made (no foreign key: see core_0004)
    tenant: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class UserRow(Base):
    """A dashboard user: local (argon2 password hash) or single sign-on (``external_subject``)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(40))
    tenant: Mapped[str] = mapped_column(String(64), default="default")
    source: Mapped[str] = mapped_column(String(16), default="local")  # local | oidc
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    external_subject: Mapped[str | None] = mapped_column(String(400), nullable=True, unique=True)
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class UserSessionRow(Base):
    """One dashboard sign-in: the token is kept as sha256; ended by sign-out, expiry, idleness
    or the user being disabled."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)


class ActionRow(Base):
    """One action that changed something (a label, a review, a user managed, a sign-in), with
    who did it: an API key, or a dashboard user with the role and tenant they acted under."""

    __tablename__ = "audit_actions"
    __table_args__ = (Index("ix_audit_actions_user_created", "user_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    domain: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(200), nullable=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(40), nullable=True)
    tenant: Mapped[str] = mapped_column(String(64), default="default")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PredictionRecordRow(Base):
    """One row per prediction served: who, when, which model, what went in and came out."""

    __tablename__ = "prediction_records"
    __table_args__ = (
        UniqueConstraint(
            "api_key_id", "route", "idempotency_key", name="uq_prediction_idempotency"
        ),
        Index("ix_prediction_records_domain_created", "domain", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64))
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    domain: Mapped[str] = mapped_column(String(64))
    route: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str | None] = mapped_column(String(120), nullable=True)
    input_sha256: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    output: Mapped[Any] = mapped_column(JSON)
    status_code: Mapped[int] = mapped_column(Integer, default=200)
    latency_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("domain", "name", "version", name="uq_model_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(120))
    version: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(16), default="staging")
    metrics: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)
    artifact_path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    card: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DerivedArtifactRow(Base):
    """A file made from a model version (ONNX export, quantized variant, cache, reference
    profile), registered with its sha256 like the version's own artifact: one per (version, kind).
    """

    __tablename__ = "derived_artifacts"
    __table_args__ = (
        UniqueConstraint("model_version_id", "kind", name="uq_derived_artifact_kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(120))
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
