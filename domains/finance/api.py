"""The finance router (mounted at ``/v1/finance`` behind API-key auth by the core)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from verticals.core.auth import Principal
from verticals.core.errors import (
    BadRequest,
    Forbidden,
    InvalidInput,
    PayloadTooLarge,
    UnsupportedMediaType,
    VerticalsError,
)
from verticals.core.labeling.router import LabelingRoutes, labels_router
from verticals.core.serving.deps import CurrentPrincipal, audit_context, require_scope
from verticals.domains.finance import service
from verticals.domains.finance.model.data import read_table
from verticals.domains.finance.runtime import Runtime
from verticals.domains.finance.schemas import (
    BatchIn,
    BatchOut,
    LabelIn,
    LabelOut,
    ReviewQueueOut,
    ScoreOut,
    TransactionIn,
    TransactionOut,
)
from verticals.domains.finance.scoring import ScoreRequest
from verticals.domains.finance.settings import MODEL_NAME

DOMAIN = "finance"
TABLE_TYPES = {
    "text/csv": "upload.csv",
    "application/vnd.apache.parquet": "upload.parquet",
    "application/x-parquet": "upload.parquet",
    "application/octet-stream": "upload.bin",
}
RAW_COLUMNS = {
    "TRANSACTION_ID": "transaction_id",
    "TX_DATETIME": "tx_datetime",
    "CUSTOMER_ID": "customer_id",
    "TERMINAL_ID": "terminal_id",
    "TX_AMOUNT": "amount",
}
TransactionId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]
ScoreScope = Annotated[Principal, Depends(require_scope("finance:score"))]
ReviewScope = Annotated[Principal, Depends(require_scope("finance:review"))]


async def read_scope(principal: CurrentPrincipal) -> Principal:
    """Reading a transaction: any of the finance scopes will do."""
    if not any(principal.allows(f"finance:{a}") for a in ("read", "score", "review")):
        raise Forbidden("this API key lacks 'finance:read', 'finance:score' or 'finance:review'")
    return principal


ReadScope = Annotated[Principal, Depends(read_scope)]


def _raise(result: ScoreOut | VerticalsError) -> ScoreOut:
    if isinstance(result, VerticalsError):
        raise result
    return result


def _json_batch(raw: bytes, max_rows: int) -> list[TransactionIn]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}", {"field": "body"}) from exc
    if isinstance(data, dict) and isinstance(data.get("transactions"), list):
        if len(data["transactions"]) > max_rows:
            raise PayloadTooLarge(
                f"at most {max_rows} transactions per batch, got {len(data['transactions'])}",
                {"field": "transactions", "max_rows": max_rows},
            )
    try:
        return BatchIn.model_validate(data).transactions
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
        ) from None


def _table_batch(raw: bytes, filename: str, max_rows: int) -> list[TransactionIn]:
    frame = read_table(raw, filename=filename)
    frame = frame.rename(columns=RAW_COLUMNS)
    missing = [c for c in RAW_COLUMNS.values() if c not in frame.columns]
    if missing:
        raise InvalidInput(f"uploaded table lacks columns {missing}", {"field": missing[0]})
    if len(frame) > max_rows:
        raise PayloadTooLarge(
            f"at most {max_rows} rows per upload, got {len(frame)}",
            {"field": "file", "max_rows": max_rows},
        )
    if len(frame) == 0:
        raise InvalidInput("the uploaded table has no rows", {"field": "file"})
    out = []
    for i, rec in enumerate(frame[list(RAW_COLUMNS.values())].to_dict("records")):
        for key in ("transaction_id", "customer_id", "terminal_id"):
            value = rec[key]
            if isinstance(value, float) and math.isfinite(value) and value == int(value):
                value = int(value)
            rec[key] = str(value)
        if hasattr(rec["tx_datetime"], "isoformat"):
            rec["tx_datetime"] = rec["tx_datetime"].isoformat()
        try:
            out.append(TransactionIn.model_validate(rec))
        except ValidationError as exc:
            first = exc.errors(include_input=False)[0]
            field = ".".join(str(p) for p in first["loc"])
            raise InvalidInput(
                f"row {i}: {field}: {first['msg']}", {"row": i, "field": field}
            ) from None
    return out


def build_router(runtime: Callable[[], Runtime]) -> APIRouter:
    router = APIRouter()

    @router.post(
        "/transactions:score",
        response_model=ScoreOut,
        summary="Score one card transaction (idempotent on transaction_id)",
    )
    async def score(body: TransactionIn, request: Request, principal: ScoreScope) -> Response:
        ctx = audit_context(request, principal, DOMAIN)
        out = _raise(await runtime().batcher.submit(ScoreRequest.of(body, ctx)))
        # serialised here: returned as a model, FastAPI would validate it again first
        return Response(out.model_dump_json(), media_type="application/json")

    @router.post(
        "/transactions:batch",
        response_model=BatchOut,
        summary="Score up to 10,000 transactions: JSON, or a Parquet/CSV upload",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": BatchIn.model_json_schema()},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {"file": {"type": "string", "format": "binary"}},
                            "required": ["file"],
                        }
                    },
                    "text/csv": {"schema": {"type": "string"}},
                    "application/vnd.apache.parquet": {
                        "schema": {"type": "string", "format": "binary"}
                    },
                },
            }
        },
    )
    async def batch(request: Request, principal: ScoreScope) -> BatchOut:
        rt = runtime()
        max_rows = rt.serving.max_batch_rows
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "application/json":
            transactions = _json_batch(await request.body(), max_rows)
        elif ctype == "multipart/form-data":
            form = await request.form()
            upload: Any = form.get("file")
            if upload is None or not hasattr(upload, "read"):
                raise InvalidInput("multipart upload needs a 'file' part", {"field": "file"})
            transactions = _table_batch(await upload.read(), upload.filename or "", max_rows)
        elif ctype in TABLE_TYPES:
            transactions = _table_batch(await request.body(), TABLE_TYPES[ctype], max_rows)
        else:
            raise UnsupportedMediaType(
                f"unsupported content type {ctype!r}",
                {
                    "field": "content-type",
                    "allowed": ["application/json", "multipart/form-data", *TABLE_TYPES],
                },
            )
        ctx = audit_context(request, principal, DOMAIN)
        requests = [ScoreRequest.of(tx, ctx) for tx in transactions]
        results = await run_in_threadpool(rt.service.score_many, requests)
        return BatchOut(n_transactions=len(results), results=[_raise(r) for r in results])

    @router.post(
        "/transactions/{transaction_id}/label",
        response_model=LabelOut,
        summary="Label a transaction (feeds the delayed terminal/customer features)",
    )
    def label(transaction_id: TransactionId, body: LabelIn, principal: ReviewScope) -> LabelOut:
        runtime()
        return service.label_transaction(transaction_id, body, actor=principal)

    @router.get("/transactions/{transaction_id}", response_model=TransactionOut)
    def get_transaction(transaction_id: TransactionId, principal: ReadScope) -> TransactionOut:
        return service.get_transaction(transaction_id, tenant=principal.tenant)

    @router.get("/review-queue", response_model=ReviewQueueOut)
    def review_queue(
        principal: ReviewScope, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> ReviewQueueOut:
        items = service.review_queue(limit, tenant=principal.tenant)
        return ReviewQueueOut(n_items=len(items), items=items)

    router.include_router(
        labels_router(
            LabelingRoutes(
                domain=DOMAIN,
                labels={MODEL_NAME: ("fraud", "genuine")},
                read_scope="finance:review",
                write_scope="finance:review",
            )
        )
    )
    return router
