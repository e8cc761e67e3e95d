"""Maintenance outcomes as labels of the failure model, through core's labeling queue.

Each reading scored for a registered machine tool becomes an item (subject
``<asset_id>@<scored at>``, the reading kept as its payload so a retrain can use it), queued by
how unsure the model is: the margin of its failure probability to the decision threshold (core's
uncertainty strategy). A planner records what happened to the machine (failed, with the modes
found, or ran fine); the outcome labels the asset's newest scored reading, and its older open
items leave the queue (superseded).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session
from verticals.core.auth import Principal
from verticals.core.db.base import utcnow
from verticals.core.errors import NotFound
from verticals.core.labeling import store
from verticals.core.labeling.strategies import doubt
from verticals.core.labeling.tables import LabelItemRow
from verticals.domains.manufacturing import NAME
from verticals.domains.manufacturing.model.failure import FailureEstimate, MachineReading
from verticals.domains.manufacturing.model.shipping import FAILURE
from verticals.domains.manufacturing.schemas import OutcomeIn, OutcomeOut

FAILED, RAN_FINE = "failure", "ok"
LABELS = (FAILED, RAN_FINE)  # the positive one first


def queue_reading(
    session: Session,
    *,
    tenant: str,
    asset_id: str,
    reading: MachineReading,
    estimate: FailureEstimate,
    model_version: str,
) -> LabelItemRow:
    choice = doubt(estimate.failure_probability, estimate.threshold)
    scored_at = utcnow()
    return store.enqueue(
        session,
        tenant=tenant,
        domain=NAME,
        model=FAILURE,
        subject=f"{asset_id}@{scored_at:%Y%m%dT%H%M%S.%fZ}",
        priority=choice.score,
        strategy="uncertainty",
        reason=choice.reason,
        score=estimate.failure_probability,
        model_version=model_version,
        payload={"asset_id": asset_id, "reading": reading.model_dump(mode="json")},
    )


def _items_of(session: Session, tenant: str, asset_id: str) -> list[LabelItemRow]:
    """The asset's items, newest first."""
    query = select(LabelItemRow).where(
        LabelItemRow.tenant == tenant,
        LabelItemRow.domain == NAME,
        LabelItemRow.model == FAILURE,
        LabelItemRow.subject.startswith(f"{asset_id}@", autoescape=True),
    )
    return list(session.scalars(query.order_by(LabelItemRow.id.desc())))


def record_outcome(
    session: Session, actor: Principal, asset_id: str, body: OutcomeIn
) -> OutcomeOut:
    items = _items_of(session, actor.tenant, asset_id)
    if not items:
        raise NotFound(
            f"asset {asset_id!r} has no scored reading to attach an outcome to: score one "
            "with POST /v1/manufacturing/machines:score and its asset_id",
            {"asset_id": asset_id},
        )
    newest, older = items[0], items[1:]
    label = FAILED if body.failed else RAN_FINE
    annotation = store.annotate_as(
        session,
        newest,
        label,
        actor,
        note=body.note,
        detail={"failure_modes": list(body.failure_modes)},
    )
    for item in older:
        store.close(session, item)
    return OutcomeOut(
        asset_id=asset_id,
        item_id=newest.id,
        label=label,
        failure_modes=list(body.failure_modes),
        failure_probability=newest.score,
        recorded_at=annotation.created_at,
    )
