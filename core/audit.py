"""The prediction record, idempotent replay, and the action log.

Every prediction is written in the same transaction as the domain's own state changes and
committed before the response leaves, so nothing acknowledged is lost. A repeated idempotency
key with the same input returns the stored output; with a different input, 409.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any, cast

from pydantic import BaseModel
from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session
from verticals.core.auth import DEFAULT_TENANT, Principal
from verticals.core.db.base import utcnow
from verticals.core.db.models import ActionRow, PredictionRecordRow
from verticals.core.db.session import session_scope
from verticals.core.errors import Conflict
from verticals.core.metrics import observe_prediction

# Built once: no cache-key walk per call. A declarative class's __table__ is its Table.
_INSERT_RECORDS = insert(cast(Table, PredictionRecordRow.__table__))


class AuditContext(BaseModel):
    """Who asked (key or user, and the tenant whose rows the request may see) and where."""

    request_id: str
    api_key_id: int | None
    domain: str
    route: str
    user_id: int | None = None
    tenant: str = DEFAULT_TENANT


class Outcome(BaseModel):
    """What a scoring function returns: the response body and the model that produced it."""

    output: Any
    model_version: str | None = None
    model: str | None = None


def input_sha256(payload: Any) -> str:
    """sha256 of raw bytes, or of the canonical JSON of a structured payload."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return hashlib.sha256(bytes(payload)).hexdigest()
    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json")
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def stored_output(
    session: Session, ctx: AuditContext, idempotency_key: str, digest: str
) -> Any | None:
    """The answer stored under this key's (or, without a key, this user's) idempotency key.

    Scoped to the API key (a key belongs to one tenant for life, so no answer crosses tenants);
    a dashboard request, which has no key, is scoped to its user."""
    row = session.scalar(
        select(PredictionRecordRow).where(
            PredictionRecordRow.api_key_id == ctx.api_key_id,
            PredictionRecordRow.user_id == ctx.user_id,
            PredictionRecordRow.route == ctx.route,
            PredictionRecordRow.idempotency_key == idempotency_key,
        )
    )
    if row is None:
        return None
    if row.input_sha256 != digest:
        raise Conflict(
            f"idempotency key {idempotency_key!r} was already used with a different request body",
            {"idempotency_key": idempotency_key},
        )
    return row.output


def audit_row(
    ctx: AuditContext,
    *,
    digest: str,
    outcome: Outcome,
    latency_ms: float,
    idempotency_key: str | None = None,
    status_code: int = 200,
) -> dict[str, Any]:
    """One prediction record as column values, for :func:`record_rows`."""
    return {
        "request_id": ctx.request_id,
        "api_key_id": ctx.api_key_id,
        "user_id": ctx.user_id,
        "domain": ctx.domain,
        "route": ctx.route,
        "model_version": outcome.model_version,
        "input_sha256": digest,
        "idempotency_key": idempotency_key,
        "output": outcome.output,
        "status_code": status_code,
        "latency_ms": latency_ms,
        "created_at": utcnow(),
    }


def record_rows(session: Session, rows: list[dict[str, Any]], *, model: str) -> None:
    """Insert prediction records in the session's transaction: one executemany, no ORM objects
    (a micro-batch of a few dozen predictions costs one statement). Every record also counts in
    ``verticals_predictions_total`` and ``verticals_prediction_seconds`` under its domain,
    ``model`` and version (counted as recorded: a transaction that then fails to commit has
    answered nobody, and is rare enough not to matter to a rate)."""
    if not rows:
        return
    session.execute(_INSERT_RECORDS, rows)
    for row in rows:
        observe_prediction(
            row["domain"], model, row["model_version"] or "", row["latency_ms"] / 1000.0
        )


def audited(
    ctx: AuditContext,
    *,
    payload: Any,
    compute: Callable[[Session], Outcome],
    idempotency_key: str | None = None,
) -> Any:
    """Run ``compute`` and record it in one transaction; replay a stored result on retry.

    ``compute`` receives the transaction's session so its own writes commit atomically with
    the record. Returns the output (the fresh one, or the stored one on an idempotent retry).
    """
    digest = input_sha256(payload)
    started = time.perf_counter()
    try:
        with session_scope() as session:
            if idempotency_key is not None:
                previous = stored_output(session, ctx, idempotency_key, digest)
                if previous is not None:
                    return previous
            outcome = compute(session)
            latency_ms = (time.perf_counter() - started) * 1000.0
            record_rows(
                session,
                [
                    audit_row(
                        ctx,
                        digest=digest,
                        outcome=outcome,
                        latency_ms=latency_ms,
                        idempotency_key=idempotency_key,
                    )
                ],
                model=outcome.model or "",
            )
        return outcome.output
    except DBIntegrityError:
        # A concurrent retry with the same idempotency key committed first: answer with its result.
        if idempotency_key is None:
            raise
        with session_scope() as session:
            previous = stored_output(session, ctx, idempotency_key, digest)
        if previous is None:
            raise
        return previous


def recent_predictions(
    session: Session, limit: int = 20, domains: Collection[str] | None = None
) -> list[dict]:
    """The newest records, of ``domains`` only when given."""
    query = select(PredictionRecordRow).order_by(PredictionRecordRow.id.desc()).limit(limit)
    if domains is not None:
        query = query.where(PredictionRecordRow.domain.in_(list(domains)))
    return [
        {
            "id": row.id,
            "domain": row.domain,
            "route": row.route,
            "model_version": row.model_version,
            "api_key_id": row.api_key_id,
            "user_id": row.user_id,
            "latency_ms": round(row.latency_ms, 2),
            "created_at": row.created_at.isoformat() if row.created_at else None,
        }
        for row in session.scalars(query)
    ]


class ActionOut(BaseModel):
    id: int
    created_at: datetime
    domain: str
    action: str
    target: str | None
    actor: str
    api_key_id: int | None
    user_id: int | None
    role: str | None
    tenant: str
    detail: dict[str, Any]


def record_action(
    session: Session,
    actor: Principal,
    *,
    domain: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Log an action in the caller's transaction, under the API key or the signed-in user (with
    the role and tenant they acted under). ``detail`` must hold no patient or card data."""
    session.add(
        ActionRow(
            domain=domain,
            action=action,
            target=target,
            api_key_id=actor.key_id,
            user_id=actor.user_id,
            actor=actor.name,
            role=actor.role,
            tenant=actor.tenant,
            detail=detail or {},
            created_at=utcnow(),
        )
    )


def recent_actions(
    session: Session, *, user_id: int | None = None, limit: int = 50
) -> list[ActionOut]:
    query = select(ActionRow).order_by(ActionRow.id.desc()).limit(limit)
    if user_id is not None:
        query = query.where(ActionRow.user_id == user_id)
    return [ActionOut.model_validate(row, from_attributes=True) for row in session.scalars(query)]
