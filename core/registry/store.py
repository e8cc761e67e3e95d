"""Registry operations over the ``model_versions`` table."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session
from verticals.core.db.models import ModelVersionRow
from verticals.core.errors import Conflict, InvalidInput, NotFound
from verticals.core.registry.cards import ModelCard
from verticals.core.registry.integrity import file_sha256, load_verified

Stage = Literal["staging", "production", "archived"]
STAGES: tuple[Stage, ...] = ("staging", "production", "archived")


class ModelVersion(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    domain: str
    name: str
    version: str
    stage: Stage
    metrics: dict[str, float]
    artifact_path: str
    sha256: str
    card: ModelCard
    extra: dict[str, Any]
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.domain}/{self.name}:{self.version}"


def _public(row: ModelVersionRow) -> ModelVersion:
    return ModelVersion(
        domain=row.domain,
        name=row.name,
        version=row.version,
        stage=row.stage,
        metrics=row.metrics or {},
        artifact_path=row.artifact_path,
        sha256=row.sha256,
        card=ModelCard.model_validate(row.card or {"name": row.name}),
        extra=row.extra or {},
        created_at=row.created_at,
    )


def register(
    session: Session,
    *,
    domain: str,
    name: str,
    version: str,
    artifact_path: Path,
    metrics: dict[str, float] | None = None,
    card: ModelCard | None = None,
    stage: Stage = "staging",
    extra: dict[str, Any] | None = None,
) -> ModelVersion:
    """Record a new version; the artifact's sha256 is computed now and checked on every load."""
    artifact_path = Path(artifact_path).resolve()
    if not artifact_path.is_file():
        raise InvalidInput(f"artifact {artifact_path} does not exist")
    existing = session.scalar(
        select(ModelVersionRow).where(
            ModelVersionRow.domain == domain,
            ModelVersionRow.name == name,
            ModelVersionRow.version == version,
        )
    )
    if existing is not None:
        raise Conflict(f"model {domain}/{name}:{version} is already registered")
    card = card or ModelCard(name=name)
    card = card.model_copy(update={"version": version, "metrics": metrics or card.metrics})
    row = ModelVersionRow(
        domain=domain,
        name=name,
        version=version,
        stage="staging",
        metrics=metrics or {},
        artifact_path=str(artifact_path),
        sha256=file_sha256(artifact_path),
        card=card.model_dump(mode="json"),
        extra=extra or {},
    )
    session.add(row)
    try:
        session.flush()
    except DBIntegrityError:  # a concurrent registration won the unique constraint
        raise Conflict(f"model {domain}/{name}:{version} is already registered") from None
    if stage == "production":
        return promote(session, domain=domain, name=name, version=version)
    row.stage = stage
    session.flush()
    return _public(row)


def _row(session: Session, domain: str, name: str, version: str) -> ModelVersionRow:
    row = session.scalar(
        select(ModelVersionRow).where(
            ModelVersionRow.domain == domain,
            ModelVersionRow.name == name,
            ModelVersionRow.version == version,
        )
    )
    if row is None:
        raise NotFound(f"model {domain}/{name}:{version} is not registered")
    return row


def get_version(session: Session, domain: str, name: str, version: str) -> ModelVersion:
    return _public(_row(session, domain, name, version))


def production_version(session: Session, domain: str, name: str) -> ModelVersion | None:
    row = session.scalar(
        select(ModelVersionRow)
        .where(
            ModelVersionRow.domain == domain,
            ModelVersionRow.name == name,
            ModelVersionRow.stage == "production",
        )
        .order_by(ModelVersionRow.created_at.desc(), ModelVersionRow.id.desc())
    )
    return _public(row) if row is not None else None


def list_versions(
    session: Session, domain: str | None = None, name: str | None = None
) -> list[ModelVersion]:
    query = select(ModelVersionRow).order_by(
        ModelVersionRow.domain, ModelVersionRow.name, ModelVersionRow.id
    )
    if domain is not None:
        query = query.where(ModelVersionRow.domain == domain)
    if name is not None:
        query = query.where(ModelVersionRow.name == name)
    return [_public(row) for row in session.scalars(query)]


def promote(
    session: Session,
    *,
    domain: str,
    name: str,
    version: str,
    stage: Stage = "production",
    max_metric_drop: float | None = None,
) -> ModelVersion:
    """Move a version to ``stage``; promoting to production archives the previous one.

    A compressed variant records ``extra["metric_drop"]`` (its metric loss against its parent);
    promotion is refused when that exceeds ``max_metric_drop`` (or ``extra["max_metric_drop"]``).
    """
    if stage not in STAGES:
        raise InvalidInput(f"unknown stage {stage!r}", {"allowed": list(STAGES)})
    row = _row(session, domain, name, version)
    if stage == "production":
        drop = row.extra.get("metric_drop") if row.extra else None
        tolerance = max_metric_drop
        if tolerance is None and row.extra:
            tolerance = row.extra.get("max_metric_drop")
        if drop is not None and tolerance is not None and float(drop) > float(tolerance):
            raise Conflict(
                f"refusing to promote {domain}/{name}:{version}: metric drops by {drop:.4f}, "
                f"more than the tolerance {tolerance:.4f}",
                {"metric_drop": drop, "tolerance": tolerance},
            )
        for current in session.scalars(
            select(ModelVersionRow).where(
                ModelVersionRow.domain == domain,
                ModelVersionRow.name == name,
                ModelVersionRow.stage == "production",
                ModelVersionRow.id != row.id,
            )
        ):
            current.stage = "archived"
    row.stage = stage
    session.flush()
    return _public(row)


def verified_artifact(version: ModelVersion) -> Path:
    """The artifact's path, after checking its sha256 against the registry (IntegrityError on a
    missing file or a mismatch)."""
    return load_verified(
        Path(version.artifact_path), version.sha256, what=f"artifact of {version.ref}"
    )
