"""Derived artifacts: files made from a registered model version, registered with their sha256.

An ONNX export, a quantized or pruned variant, a cache or a reference profile is as able to change
what a model answers as the weights it came from, so it is registered like them: one row per
(model version, kind) in ``derived_artifacts`` with its path and sha256, and opened only through
:func:`verified_derived` (or :func:`~verticals.core.registry.integrity.read_verified` with the
registered digest). Registering the same (version, kind) again replaces the earlier record.

Recovering from a failed check is an operator's decision, never automatic:
``verticals models verify`` lists what fails; ``verticals models forget-derived`` drops a
derived registration (and, with ``--delete-file``, the file) so that its producer makes and
registers it afresh from the verified model version.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from verticals.core.db.base import utcnow
from verticals.core.db.models import DerivedArtifactRow, ModelVersionRow
from verticals.core.errors import IntegrityError, InvalidInput
from verticals.core.registry.integrity import file_sha256, load_verified
from verticals.core.registry.store import ModelVersion, _public, _row

KIND_MAX = 120


class DerivedArtifact(BaseModel):
    """A registered derived file of model version ``domain/name:version``."""

    domain: str
    name: str
    version: str
    kind: str
    path: str
    sha256: str
    size_bytes: int
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.domain}/{self.name}:{self.version}"

    @property
    def what(self) -> str:
        """How errors and logs name it, e.g. ``onnx artifact of medical/pneumonia:0.1.0``."""
        return f"{self.kind} artifact of {self.ref}"


class ArtifactCheck(BaseModel):
    """One line of ``verticals models verify``."""

    model: str
    kind: str  # "model" for the version's own artifact, else the derived kind
    path: str
    status: Literal["ok", "missing", "mismatch", "invalid"]
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _check_kind(kind: str) -> str:
    if not kind or len(kind) > KIND_MAX or not kind.isascii() or any(c.isspace() for c in kind):
        raise InvalidInput(
            f"derived artifact kind must be 1-{KIND_MAX} ASCII characters without spaces, "
            f"got {kind!r}"
        )
    return kind


def _derived(row: DerivedArtifactRow, parent: ModelVersionRow) -> DerivedArtifact:
    return DerivedArtifact(
        domain=parent.domain,
        name=parent.name,
        version=parent.version,
        kind=row.kind,
        path=row.path,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        created_at=row.created_at,
    )


def _find(session: Session, parent: ModelVersionRow, kind: str) -> DerivedArtifactRow | None:
    return session.scalar(
        select(DerivedArtifactRow).where(
            DerivedArtifactRow.model_version_id == parent.id, DerivedArtifactRow.kind == kind
        )
    )


def register_derived(
    session: Session, version: ModelVersion, kind: str, path: Path
) -> DerivedArtifact:
    """Record ``path`` (hashed now) as the ``kind`` artifact of ``version``, replacing an earlier
    registration of the same (version, kind). NotFound if the version is not registered."""
    kind = _check_kind(kind)
    path = Path(path).resolve()
    if not path.is_file():
        raise InvalidInput(f"derived artifact {path} does not exist")
    parent = _row(session, version.domain, version.name, version.version)
    digest, size = file_sha256(path), path.stat().st_size
    row = _find(session, parent, kind)
    if row is None:
        row = DerivedArtifactRow(model_version_id=parent.id, kind=kind)
        session.add(row)
    row.path, row.sha256, row.size_bytes, row.created_at = str(path), digest, size, utcnow()
    session.flush()
    return _derived(row, parent)


def derived_artifact(session: Session, version: ModelVersion, kind: str) -> DerivedArtifact | None:
    """The registration of ``version``'s ``kind`` artifact, or None (NotFound if the version
    itself is not registered)."""
    parent = _row(session, version.domain, version.name, version.version)
    row = _find(session, parent, _check_kind(kind))
    return _derived(row, parent) if row is not None else None


def verified_derived(session: Session, version: ModelVersion, kind: str) -> Path | None:
    """The path of ``version``'s ``kind`` artifact after its sha256 check; None when none was
    ever registered. IntegrityError when the registered file is missing or differs."""
    found = derived_artifact(session, version, kind)
    if found is None:
        return None
    return load_verified(Path(found.path), found.sha256, what=found.what)


def list_derived(session: Session, version: ModelVersion | None = None) -> list[DerivedArtifact]:
    query = (
        select(DerivedArtifactRow, ModelVersionRow)
        .join(ModelVersionRow, DerivedArtifactRow.model_version_id == ModelVersionRow.id)
        .order_by(
            ModelVersionRow.domain,
            ModelVersionRow.name,
            ModelVersionRow.id,
            DerivedArtifactRow.kind,
        )
    )
    if version is not None:
        parent = _row(session, version.domain, version.name, version.version)
        query = query.where(DerivedArtifactRow.model_version_id == parent.id)
    return [_derived(row, parent) for row, parent in session.execute(query)]


def forget_derived(session: Session, version: ModelVersion, kind: str) -> DerivedArtifact | None:
    """Drop the registration of ``version``'s ``kind`` artifact (the file stays); returns what was
    removed, or None. Its producer then makes and registers it afresh on next use."""
    parent = _row(session, version.domain, version.name, version.version)
    row = _find(session, parent, _check_kind(kind))
    if row is None:
        return None
    removed = _derived(row, parent)
    session.delete(row)
    session.flush()
    return removed


def _check(model: str, kind: str, path: str, sha256: str, what: str) -> ArtifactCheck:
    try:
        load_verified(Path(path), sha256, what=what)
    except IntegrityError as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        status = details.get("reason", "mismatch")
        return ArtifactCheck(model=model, kind=kind, path=path, status=status, message=exc.message)
    return ArtifactCheck(model=model, kind=kind, path=path, status="ok")


def verify_registry(session: Session, domain: str | None = None) -> list[ArtifactCheck]:
    """Check every registered artifact and derived artifact (of ``domain``, or all)."""
    versions = select(ModelVersionRow).order_by(
        ModelVersionRow.domain, ModelVersionRow.name, ModelVersionRow.id
    )
    if domain is not None:
        versions = versions.where(ModelVersionRow.domain == domain)
    checks: list[ArtifactCheck] = []
    for row in session.scalars(versions):
        version = _public(row)
        checks.append(
            _check(
                version.ref,
                "model",
                version.artifact_path,
                version.sha256,
                f"artifact of {version.ref}",
            )
        )
        for derived in list_derived(session, version):
            checks.append(
                _check(derived.ref, derived.kind, derived.path, derived.sha256, derived.what)
            )
    return checks
