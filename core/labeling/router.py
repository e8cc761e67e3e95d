"""The labeling routes a domain mounts under its own prefix (``/v1/<domain>/labels/...``): the
queue with why each item was chosen, assignment, an item with its annotations, counts, the
label-issue scan, and (for domains whose labels need no domain-side effect) annotating.

Callers keep the domain's words: finance labels a transaction at
``/v1/finance/transactions/{id}/label`` and medical reviews a study; these routes are the queue
around those, the same in every domain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from verticals.core.auth import Principal
from verticals.core.db import session_scope
from verticals.core.errors import InvalidInput
from verticals.core.labeling import issues, store
from verticals.core.labeling.tables import LabelItemRow
from verticals.core.serving.deps import require_scope

ItemId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class LabelItemOut(BaseModel):
    id: int
    model: str
    subject: str = Field(description="the domain's id of the labelled thing")
    model_version: str | None
    score: float | None = Field(description="the model's output when the item was queued")
    priority: float
    strategy: str | None = Field(description="what chose the item: risk, cost, uncertainty...")
    why: str | None = Field(description="why the item was chosen, in words")
    status: str
    assigned_to: str | None
    label: str | None = Field(description="the accepted label (majority of the labellers)")
    annotations: int
    agreement: float | None
    issue_score: float | None
    second_review: bool
    created_at: datetime
    labelled_at: datetime | None

    @classmethod
    def of(cls, row: LabelItemRow) -> LabelItemOut:
        return cls(
            id=row.id,
            model=row.model,
            subject=row.subject,
            model_version=row.model_version,
            score=row.score,
            priority=row.priority,
            strategy=row.strategy,
            why=row.reason,
            status=row.status,
            assigned_to=row.assigned_to,
            label=row.label,
            annotations=row.annotations,
            agreement=row.agreement,
            issue_score=row.issue_score,
            second_review=row.second_review,
            created_at=row.created_at,
            labelled_at=row.labelled_at,
        )


class AnnotationOut(BaseModel):
    label: str
    labeller: str | None
    role: str | None
    note: str | None
    created_at: datetime


class LabelItemDetail(LabelItemOut):
    history: list[AnnotationOut]


class LabelQueueOut(BaseModel):
    n_items: int
    items: list[LabelItemOut]


class LabelCountsOut(BaseModel):
    pending: int
    assigned: int
    labelled: int
    closed: int
    second_review: int


class AnnotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=120)
    note: str | None = Field(None, max_length=2000)


class IssueScanOut(BaseModel):
    model: str
    flagged: list[LabelItemOut]


@dataclass(frozen=True)
class LabelingRoutes:
    """What a domain declares: its name, its models' labels (model -> the allowed labels, the
    positive one first, for the issue scan), and the scopes that read and label.
    ``annotate`` False leaves labelling to the domain's own route (labels with side effects)."""

    domain: str
    labels: Mapping[str, tuple[str, ...]]
    read_scope: str
    write_scope: str
    annotate: bool = False

    def check_model(self, model: str) -> str:
        if model not in self.labels:
            raise InvalidInput(
                f"model {model!r} has no labeling queue",
                {"field": "model", "models": [*self.labels]},
            )
        return model


def labels_router(spec: LabelingRoutes) -> APIRouter:
    router = APIRouter(prefix="/labels", tags=["labels"])
    # the schema names the models, so a model the domain has no queue for is a schema error
    model_pattern = "^(" + "|".join(re.escape(m) for m in spec.labels) + ")$"
    # dependencies and the model's pattern as defaults, not in Annotated: local names are
    # invisible to the string annotations FastAPI resolves against this module's globals
    reader = Depends(require_scope(spec.read_scope))
    writer = Depends(require_scope(spec.write_scope))

    @router.get("/queue", response_model=LabelQueueOut, summary="Open items, most useful first")
    def queue(
        principal: Principal = reader,
        model: str | None = Query(None, max_length=120, pattern=model_pattern),
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        mine: Annotated[bool, Query(description="leave out others' assignments")] = False,
    ) -> LabelQueueOut:
        if model is not None:
            spec.check_model(model)
        with session_scope() as session:
            rows = store.queue(
                session,
                tenant=principal.tenant,
                domain=spec.domain,
                model=model,
                limit=limit,
                person=principal.name if mine else None,
            )
            items = [LabelItemOut.of(row) for row in rows]
        return LabelQueueOut(n_items=len(items), items=items)

    @router.get("/counts", response_model=LabelCountsOut)
    def counts(principal: Principal = reader) -> LabelCountsOut:
        with session_scope() as session:
            found = store.counts(session, tenant=principal.tenant, domain=spec.domain)
        return LabelCountsOut(**found)

    @router.get("/items/{item_id}", response_model=LabelItemDetail)
    def item(item_id: ItemId, principal: Principal = reader) -> LabelItemDetail:
        with session_scope() as session:
            row = _domain_item(session, item_id, principal.tenant)
            history = [
                AnnotationOut(
                    label=a.label,
                    labeller=a.labeller,
                    role=a.role,
                    note=a.note,
                    created_at=a.created_at,
                )
                for a in store.annotations_of(session, row)
            ]
            return LabelItemDetail(**LabelItemOut.of(row).model_dump(), history=history)

    @router.post("/items/{item_id}/assignment", response_model=LabelItemOut)
    def assign(item_id: ItemId, principal: Principal = writer) -> LabelItemOut:
        with session_scope() as session:
            row = store.assign(
                session, _domain_item(session, item_id, principal.tenant), principal.name
            )
            return LabelItemOut.of(row)

    if spec.annotate:

        @router.post("/items/{item_id}/annotations", response_model=LabelItemOut)
        def annotate(
            item_id: ItemId, body: AnnotateIn, principal: Principal = writer
        ) -> LabelItemOut:
            with session_scope() as session:
                row = _domain_item(session, item_id, principal.tenant)
                allowed = spec.labels[row.model]
                if body.label not in allowed:
                    raise InvalidInput(
                        f"label {body.label!r} is not one of {list(allowed)}", {"field": "label"}
                    )
                store.annotate_as(session, row, body.label, principal, note=body.note)
                return LabelItemOut.of(row)

    @router.post(
        "/issues:scan",
        response_model=IssueScanOut,
        summary="Send labels the model strongly disagrees with to a second reviewer",
    )
    def scan(
        model: str = Query(..., max_length=120, pattern=model_pattern),
        principal: Principal = writer,
    ) -> IssueScanOut:
        spec.check_model(model)
        with session_scope() as session:
            flagged = issues.flag_label_issues(
                session,
                domain=spec.domain,
                model=model,
                positive=spec.labels[model][0],
                tenant=principal.tenant,
            )
            return IssueScanOut(model=model, flagged=[LabelItemOut.of(r) for r in flagged])

    def _domain_item(session: Session, item_id: int, tenant: str) -> LabelItemRow:
        row = store.get_item(session, item_id, tenant=tenant)
        if row.domain != spec.domain:  # another domain's item is unknown here
            from verticals.core.errors import NotFound

            raise NotFound(f"label item {item_id} is unknown", {"field": "id"})
        return row

    return router
