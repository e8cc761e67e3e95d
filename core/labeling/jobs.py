"""Retraining jobs: queued by a person, the API or a monitoring alert; run by a worker.

A job is only queued where it is asked for (the API never trains). A worker claims the oldest
queued job with one conditional UPDATE (``... WHERE id = :id AND status = 'queued'``) and owns
it only when that UPDATE changed a row: two workers racing for one job cannot both run it, on
SQLite or PostgreSQL. The claim is committed before the job runs, so a crash leaves it
``running`` (visible, with the worker's name) rather than silently re-run.

At most one job per domain/model waits in the queue: asking again (a second alert, a second
click) returns the job already waiting.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal, cast

from pydantic import BaseModel, Field
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session
from verticals.core.db.base import utcnow
from verticals.core.labeling.tables import RetrainJobRow

log = logging.getLogger(__name__)

# alert rules whose firing asks for a retrain: input drift and a drop of a performance metric
RETRAIN_RULES = ("drift",)
RETRAIN_RULE_PREFIX = "performance"


class RetrainJobCreate(BaseModel):
    domain: str = Field(max_length=64, pattern=r"^[a-z][a-z0-9_-]{0,39}$")
    model: str | None = Field(None, max_length=120)
    reason: str = Field("", max_length=2000)


class RetrainJobOut(BaseModel):
    id: int
    domain: str
    model: str | None
    trigger: str
    alert_id: int | None
    reason: str
    requested_by: str | None
    status: str
    worker: str | None
    result: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def job_out(row: RetrainJobRow) -> RetrainJobOut:
    return RetrainJobOut.model_validate(row, from_attributes=True)


def queue_job(
    session: Session,
    *,
    domain: str,
    model: str | None,
    trigger: Literal["manual", "schedule", "alert"],
    reason: str = "",
    requested_by: str | None = None,
    alert_id: int | None = None,
) -> tuple[RetrainJobRow, bool]:
    """Queue a job; ``(job, created)``. A job already queued for ``domain``/``model`` is
    returned instead (``created`` False)."""
    waiting = session.scalar(
        select(RetrainJobRow)
        .where(
            RetrainJobRow.domain == domain,
            RetrainJobRow.model.is_(None) if model is None else RetrainJobRow.model == model,
            RetrainJobRow.status == "queued",
        )
        .order_by(RetrainJobRow.id)
    )
    if waiting is not None:
        return waiting, False
    row = RetrainJobRow(
        domain=domain,
        model=model,
        trigger=trigger,
        alert_id=alert_id,
        reason=reason,
        requested_by=requested_by,
        status="queued",
        result={},
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row, True


def wants_retrain(rule: str) -> bool:
    return rule in RETRAIN_RULES or rule.startswith(RETRAIN_RULE_PREFIX)


@lru_cache(maxsize=1)
def retrainable() -> frozenset[tuple[str, str]]:
    """(domain, model) pairs some installed domain can retrain (read once per process)."""
    from verticals.core.plugins import discover

    pairs: set[tuple[str, str]] = set()
    for name, domain in discover().domains.items():
        try:
            recipe = domain.retraining()
        except Exception:  # noqa: BLE001 - a broken recipe must not break alerting
            log.exception("domain %r: retraining() failed", name)
            continue
        if recipe is not None:
            pairs.update((name, model) for model in recipe.models)
    return frozenset(pairs)


def queue_retrain_for_alert(session: Session, alert: Any) -> RetrainJobRow | None:
    """Called where an alert starts firing (same transaction): a drift or performance alert
    of a model its domain can retrain queues a retrain (de-duplicated); anything else queues
    nothing."""
    if not wants_retrain(alert.rule) or (alert.domain, alert.model) not in retrainable():
        return None
    row, created = queue_job(
        session,
        domain=alert.domain,
        model=alert.model,
        trigger="alert",
        alert_id=alert.id,
        reason=f"alert {alert.id} ({alert.rule}) fired: {alert.summary}"[:2000],
        requested_by="monitoring",
    )
    if created:
        log.info("alert %s (%s) queued retrain job %s", alert.id, alert.rule, row.id)
    return row


def list_jobs(
    session: Session,
    *,
    status: str | None = None,
    domain: str | None = None,
    limit: int = 100,
) -> list[RetrainJobOut]:
    query = select(RetrainJobRow).order_by(RetrainJobRow.id.desc()).limit(limit)
    if status is not None:
        query = query.where(RetrainJobRow.status == status)
    if domain is not None:
        query = query.where(RetrainJobRow.domain == domain)
    return [job_out(row) for row in session.scalars(query)]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


STALE_AFTER = timedelta(hours=12)  # longer than any retrain: its worker died (a crash, SIGKILL)


def _claimable(stale_before: datetime) -> Any:
    return (RetrainJobRow.status == "queued") | (
        (RetrainJobRow.status == "running") & (RetrainJobRow.started_at < stale_before)
    )


def claim_next(
    session: Session,
    worker: str,
    domain: str | None = None,
    *,
    stale_after: timedelta = STALE_AFTER,
) -> RetrainJobRow | None:
    """Claim the oldest queued job (of ``domain``, if given) for ``worker``, or one whose worker
    has held it ``stale_after`` without finishing (it died: the job is run again, not lost);
    None when none is left. Commit the session right after, before running the job."""
    stale_before = utcnow() - stale_after
    query = select(RetrainJobRow.id).where(_claimable(stale_before))
    if domain is not None:
        query = query.where(RetrainJobRow.domain == domain)
    candidates = session.scalars(
        query.order_by(RetrainJobRow.created_at, RetrainJobRow.id).limit(20)
    ).all()
    for job_id in candidates:
        result = session.execute(
            update(RetrainJobRow)
            .where(RetrainJobRow.id == job_id, _claimable(stale_before))
            .values(status="running", worker=worker, started_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        if cast("CursorResult[Any]", result).rowcount == 1:
            return session.get(RetrainJobRow, job_id, populate_existing=True)
    return None


def finish(session: Session, job_id: int, status: str, result: dict[str, Any]) -> None:
    row = session.get(RetrainJobRow, job_id)
    if row is None:  # pragma: no cover - jobs are never deleted
        return
    row.status, row.result, row.finished_at = status, result, utcnow()


def drain(
    run: Callable[[RetrainJobRow], dict[str, Any]],
    *,
    worker: str | None = None,
    domain: str | None = None,
) -> int:
    """Claim and run queued jobs until none is left; ``run(job)`` returns the report (its
    ``decision`` becomes the status) or raises (status ``failed``). Returns the jobs run."""
    from verticals.core.db import session_scope

    worker = worker or worker_name()
    done = 0
    while True:
        with session_scope() as session:
            job = claim_next(session, worker, domain)
            if job is None:
                return done
            session.expunge(job)
        try:
            report = run(job)
            status = report.get("decision", "failed")
        except Exception as exc:  # noqa: BLE001 - recorded on the job, the worker goes on
            log.exception("retrain job %s failed", job.id)
            report, status = {"error": f"{type(exc).__name__}: {exc}"}, "failed"
        with session_scope() as session:
            finish(session, job.id, status, report)
        done += 1
