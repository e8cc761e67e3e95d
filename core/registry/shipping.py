"""How a model enters the registry, the same way for every domain: a shipped baseline
(:func:`ensure_shipped`) and a trained version (:func:`register_and_promote`).

A release ships a model beside the code (``shared_models/<domain>/``) with its card and sha256.
:func:`ensure_shipped` registers it once, from the bytes that were checked, and promotes it when
the domain's ``replaces`` rule says so. Several replicas may start at once: the one that loses
the registration race reads the production version the winner left.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session
from verticals.core.config import get_settings
from verticals.core.db import session_scope
from verticals.core.errors import Conflict, IntegrityError, NotFound
from verticals.core.registry.cards import ModelCard
from verticals.core.registry.gate import MetricGate
from verticals.core.registry.store import (
    ModelVersion,
    get_version,
    production_version,
    promote,
    register,
)

Replaces = Callable[[ModelVersion | None, ModelCard], bool]


def replaces_older_shipped(current: ModelVersion | None, card: ModelCard) -> bool:
    """The default rule: take over when nothing is in production, or when production is an
    older shipped baseline. A model trained here, or a shipped one an operator chose, stays."""
    if current is None:
        return True
    return (current.extra or {}).get("source") == "shipped" and card.version > current.version


def install_artifact(domain: str, name: str, version: str, filename: str, payload: bytes) -> Path:
    """Write ``payload`` under the artifacts folder (atomically; untouched when identical)."""
    settings = get_settings()
    settings.ensure_home()
    target = settings.artifacts_dir / domain / name / version / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_bytes() != payload:
        # a name of its own per writer (replicas, threads): the last os.replace wins whole
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
        os.replace(tmp, target)
    return target


def _registered(session: Session, domain: str, name: str, version: str) -> bool:
    try:
        get_version(session, domain, name, version)
    except NotFound:
        return False
    return True


def ensure_shipped(
    *,
    domain: str,
    name: str,
    card: ModelCard,
    sha256: str,
    payload: Callable[[], bytes],
    filename: str,
    extra: dict[str, Any],
    replaces: Replaces = replaces_older_shipped,
    after_register: Callable[[Session, ModelVersion], None] | None = None,
) -> ModelVersion:
    """The production version of ``domain/name`` after registering the shipped ``card`` if it is
    new here, and promoting it when ``replaces(current, card)``.

    ``payload`` returns the artifact's bytes already checked against ``sha256`` (e.g.
    :func:`~verticals.core.registry.read_verified`); those bytes are what is written and
    registered. ``after_register`` registers what comes with the version (derived artifacts) in
    the same transaction. A shipped version registered before is never promoted again here
    while something else is in production (an operator's rollback stands)."""
    with session_scope() as session:
        current = production_version(session, domain, name)
        if _registered(session, domain, name, card.version):
            if current is None:  # registered, then archived, and nothing replaced it
                current = promote(session, domain=domain, name=name, version=card.version)
            return current
    target = install_artifact(domain, name, card.version, filename, payload())
    try:
        with session_scope() as session:
            version = register(
                session,
                domain=domain,
                name=name,
                version=card.version,
                artifact_path=target,
                metrics=card.metrics,
                card=card,
                stage="staging",
                extra={**extra, "source": "shipped"},
            )
            if version.sha256 != sha256:  # the target changed between our write and its hash
                raise IntegrityError(
                    f"the registered {domain}/{name} differs from the shipped one",
                    {"path": str(target), "expected": sha256, "actual": version.sha256},
                )
            if after_register is not None:
                after_register(session, version)
            current = production_version(session, domain, name)
            if replaces(current, card):
                return promote(session, domain=domain, name=name, version=card.version)
            assert current is not None, "replaces() must accept an empty production slot"
            return current
    except Conflict:  # another process registered it first: take what it left
        with session_scope() as session:
            current = production_version(session, domain, name)
        if current is None:
            raise
        return current


class Promotion(BaseModel):
    """What :func:`register_and_promote` did."""

    version: ModelVersion
    promoted: bool
    production_before: str | None
    metric: str
    value: float | None
    baseline: float | None


def register_and_promote(
    session: Session,
    *,
    domain: str,
    name: str,
    artifact_path: Path,
    card: ModelCard,
    metric: str,
    gate: MetricGate,
    extra: dict[str, Any] | None = None,
    baseline: float | None = None,
    promote_if_better: bool = True,
) -> Promotion:
    """Register a trained version (staging) and promote it when ``gate`` accepts its ``metric``
    against production's: ``baseline`` when given (production measured afresh on the same
    data), else production's registered figure. No production: it is promoted."""
    current = production_version(session, domain, name)
    if baseline is None and current is not None:
        baseline = (current.metrics or {}).get(metric)
    version = register(
        session,
        domain=domain,
        name=name,
        version=card.version,
        artifact_path=artifact_path,
        metrics=card.metrics,
        card=card,
        stage="staging",
        extra=extra,
    )
    value = card.metrics.get(metric)
    promoted = promote_if_better and (current is None or gate.accepts(baseline, value))
    if promoted:
        version = promote(session, domain=domain, name=name, version=card.version)
    return Promotion(
        version=version,
        promoted=promoted,
        production_before=current.version if current else None,
        metric=metric,
        value=value,
        baseline=baseline,
    )
