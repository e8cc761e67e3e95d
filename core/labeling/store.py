"""The annotation store: queue an item, assign it, annotate it, read accepted labels back.

Plain functions over a caller's session (the caller owns the transaction), so a domain can
queue or label inside the same transaction as its own rows: a review is never stored without
its label, nor a label without its review.

The accepted label of an item is the majority of its labellers' latest annotations (ties go to
the newest), and ``agreement`` is the share of them that agree with it. An item flagged as a likely label
issue (see :mod:`.issues`) asks for a second reviewer: it goes back to the queue until a person
other than the first one has annotated it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from verticals.core.auth import Principal
from verticals.core.db.base import utcnow
from verticals.core.errors import Conflict, NotFound
from verticals.core.labeling.tables import LabelAnnotationRow, LabelItemRow


@dataclass(frozen=True)
class AcceptedLabel:
    subject: str
    label: str
    payload: dict[str, Any] | None
    labelled_at: datetime
    score: float | None
    model_version: str | None
    agreement: float | None
    tenant: str


def item_for(
    session: Session, *, tenant: str, domain: str, model: str, subject: str
) -> LabelItemRow | None:
    return session.scalar(
        select(LabelItemRow).where(
            LabelItemRow.tenant == tenant,
            LabelItemRow.domain == domain,
            LabelItemRow.model == model,
            LabelItemRow.subject == subject,
        )
    )


def get_item(session: Session, item_id: int, *, tenant: str) -> LabelItemRow:
    item = session.get(LabelItemRow, item_id)
    if item is None or item.tenant != tenant:
        raise NotFound(f"label item {item_id} is unknown", {"field": "id"})
    return item


def enqueue(
    session: Session,
    *,
    tenant: str,
    domain: str,
    model: str,
    subject: str,
    priority: float,
    strategy: str | None = None,
    reason: str | None = None,
    score: float | None = None,
    prediction_id: int | None = None,
    model_version: str | None = None,
    payload: dict[str, Any] | None = None,
) -> LabelItemRow:
    """Queue ``subject`` for labelling, or raise the priority of its open item; an item already
    labelled stays labelled (re-queueing it is what a label-issue flag does)."""
    item = item_for(session, tenant=tenant, domain=domain, model=model, subject=subject)
    now = utcnow()
    if item is None:
        item = LabelItemRow(
            tenant=tenant,
            domain=domain,
            model=model,
            subject=subject,
            priority=float(priority),
            strategy=strategy,
            reason=reason,
            score=score,
            prediction_id=prediction_id,
            model_version=model_version,
            payload=payload,
            status="pending",
            annotations=0,
            created_at=now,
            updated_at=now,
        )
        session.add(item)
        session.flush()
    elif item.status in ("pending", "assigned") and priority > item.priority:
        item.priority, item.strategy, item.reason = float(priority), strategy, reason
        item.updated_at = now
    return item


def assign(session: Session, item: LabelItemRow, person: str) -> LabelItemRow:
    """Hand an open item to ``person``; someone else's assignment is a conflict."""
    if item.status not in ("pending", "assigned"):
        raise Conflict(f"label item {item.id} is {item.status}, not open", {"field": "id"})
    if item.status == "assigned" and item.assigned_to not in (None, person):
        raise Conflict(
            f"label item {item.id} is assigned to someone else", {"assigned_to": item.assigned_to}
        )
    item.status, item.assigned_to, item.assigned_at = "assigned", person, utcnow()
    item.updated_at = item.assigned_at
    return item


def _accepted(labels: Sequence[str]) -> tuple[str, float]:
    """Majority label (ties to the newest: ``labels`` oldest first) and its agreement."""
    counts = Counter(labels)
    top = max(counts.values())
    label = next(x for x in reversed(labels) if counts[x] == top)
    return label, top / len(labels)


def _latest_per_person(history: Sequence[LabelAnnotationRow]) -> list[str]:
    """Each person's latest label (oldest first): a person who changes their mind counts once;
    annotations without a name (API callers) count each."""
    latest: dict[object, tuple[int, str]] = {}
    for n, a in enumerate(history):
        latest[a.labeller if a.labeller is not None else ("anonymous", n)] = (n, a.label)
    return [label for _, label in sorted(latest.values())]


def annotate(
    session: Session,
    item: LabelItemRow,
    label: str,
    *,
    labeller: str | None,
    role: str | None = None,
    api_key_id: int | None = None,
    note: str | None = None,
    detail: dict[str, Any] | None = None,
) -> LabelAnnotationRow:
    """Record one person's label; the item's accepted label and agreement follow."""
    now = utcnow()
    annotation = LabelAnnotationRow(
        item_id=item.id,
        tenant=item.tenant,
        label=label,
        labeller=labeller,
        role=role,
        api_key_id=api_key_id,
        note=note,
        detail=detail or {},
        created_at=now,
    )
    session.add(annotation)
    session.flush()
    history = annotations_of(session, item)
    item.label, item.agreement = _accepted(_latest_per_person(history))
    item.annotations = len(history)
    item.labelled_at = item.updated_at = now
    labellers = {a.labeller for a in history}
    if item.second_review and len(labellers) < 2:
        item.status, item.assigned_to = "pending", None  # waits for a second person
    else:
        item.status = "labelled"
    return annotation


def annotate_as(
    session: Session,
    item: LabelItemRow,
    label: str,
    actor: Principal,
    *,
    note: str | None = None,
    detail: dict[str, Any] | None = None,
) -> LabelAnnotationRow:
    """``actor``'s label, under their name, role and API key."""
    return annotate(
        session,
        item,
        label,
        labeller=actor.name,
        role=actor.role,
        api_key_id=actor.key_id,
        note=note,
        detail=detail,
    )


def annotations_of(session: Session, item: LabelItemRow) -> list[LabelAnnotationRow]:
    query = select(LabelAnnotationRow).where(LabelAnnotationRow.item_id == item.id)
    return list(session.scalars(query.order_by(LabelAnnotationRow.id)))


def close(session: Session, item: LabelItemRow) -> None:
    """Take an open item off the queue without a label (e.g. its subject was deleted)."""
    if item.status in ("pending", "assigned"):
        item.status, item.updated_at = "closed", utcnow()


def queue(
    session: Session,
    *,
    tenant: str,
    domain: str,
    model: str | None = None,
    limit: int = 50,
    person: str | None = None,
) -> list[LabelItemRow]:
    """Open items, highest priority first (items flagged for a second review first of all);
    with ``person``, the ones assigned to someone else are left out, and an item whose only
    annotation is that person's (a second review) too."""
    query = select(LabelItemRow).where(
        LabelItemRow.tenant == tenant,
        LabelItemRow.domain == domain,
        LabelItemRow.status.in_(("pending", "assigned")),
    )
    if model is not None:
        query = query.where(LabelItemRow.model == model)
    if person is not None:
        query = query.where(
            (LabelItemRow.assigned_to.is_(None)) | (LabelItemRow.assigned_to == person)
        )
        own = select(LabelAnnotationRow.item_id).where(LabelAnnotationRow.labeller == person)
        query = query.where(~(LabelItemRow.second_review & LabelItemRow.id.in_(own)))
    query = query.order_by(
        LabelItemRow.second_review.desc(), LabelItemRow.priority.desc(), LabelItemRow.id
    )
    return list(session.scalars(query.limit(limit)))


def accepted_labels(
    session: Session,
    *,
    domain: str,
    model: str,
    since: datetime | None = None,
    tenant: str | None = None,
) -> list[AcceptedLabel]:
    """Every item of ``domain``/``model`` with an accepted label (labelled at or after
    ``since``), oldest label first; ``tenant`` None reads every tenant's."""
    query = select(LabelItemRow).where(
        LabelItemRow.domain == domain,
        LabelItemRow.model == model,
        LabelItemRow.label.is_not(None),
    )
    if since is not None:
        query = query.where(LabelItemRow.labelled_at >= since)
    if tenant is not None:
        query = query.where(LabelItemRow.tenant == tenant)
    return [
        AcceptedLabel(
            subject=row.subject,
            label=row.label or "",
            payload=row.payload,
            labelled_at=row.labelled_at or row.updated_at,
            score=row.score,
            model_version=row.model_version,
            agreement=row.agreement,
            tenant=row.tenant,
        )
        for row in session.scalars(query.order_by(LabelItemRow.labelled_at, LabelItemRow.id))
    ]


def counts(session: Session, *, tenant: str, domain: str) -> dict[str, int]:
    """Items per status, and how many wait for a second review."""
    query = (
        select(LabelItemRow.status, func.count())
        .where(LabelItemRow.tenant == tenant, LabelItemRow.domain == domain)
        .group_by(LabelItemRow.status)
    )
    out = {status: 0 for status in ("pending", "assigned", "labelled", "closed")}
    out.update({status: int(n) for status, n in session.execute(query).all()})
    out["second_review"] = int(
        session.scalar(
            select(func.count()).where(
                LabelItemRow.tenant == tenant,
                LabelItemRow.domain == domain,
                LabelItemRow.second_review,
                LabelItemRow.status.in_(("pending", "assigned")),
            )
        )
        or 0
    )
    return out
