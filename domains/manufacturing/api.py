"""The manufacturing router, mounted at ``/v1/manufacturing``: parse → service → schema."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool
from verticals.core.auth import Principal
from verticals.core.labeling.router import LabelingRoutes, labels_router
from verticals.core.serving.deps import audit_context, require_scope
from verticals.core.serving.uploads import read_limited
from verticals.domains.manufacturing import NAME, outcomes
from verticals.domains.manufacturing.model.shipping import FAILURE
from verticals.domains.manufacturing.schemas import (
    AssetId,
    AssetIn,
    AssetOut,
    AssetsOut,
    FleetOut,
    HealthOut,
    MachineScoreIn,
    MachineScoreOut,
    OutcomeIn,
    OutcomeOut,
    ReadingsIn,
    ReadingsOut,
    UploadOut,
)
from verticals.domains.manufacturing.service import FleetOrder, ManufacturingService
from verticals.domains.manufacturing.settings import get_settings

Reader = Annotated[Principal, Depends(require_scope(f"{NAME}:read"))]
Writer = Annotated[Principal, Depends(require_scope(f"{NAME}:write"))]


def build_router(service: ManufacturingService) -> APIRouter:
    router = APIRouter(tags=[NAME])

    @router.post(
        "/assets",
        response_model=AssetOut,
        status_code=201,
        responses={200: {"model": AssetOut, "description": "already registered, unchanged"}},
        summary="Register a turbofan or a machine tool",
    )
    def register_asset(body: AssetIn, principal: Writer, response: Response) -> AssetOut:
        asset, created = service.register_asset(principal, body)
        if not created:
            response.status_code = 200
        return asset

    @router.get("/assets", response_model=AssetsOut, summary="The tenant's assets")
    def list_assets(principal: Reader) -> AssetsOut:
        return AssetsOut(assets=service.list_assets(principal))

    @router.post(
        "/assets/{asset_id}/readings",
        response_model=ReadingsOut,
        summary="Turbofan cycles (C-MAPSS columns); idempotent on (asset, cycle)",
    )
    def post_readings(asset_id: AssetId, body: ReadingsIn, principal: Writer) -> ReadingsOut:
        return service.ingest_readings(principal, asset_id, body.readings)

    @router.post(
        "/readings:upload",
        response_model=UploadOut,
        summary="A C-MAPSS text file; unit n becomes asset unit-<n>",
    )
    async def upload_readings(file: UploadFile, principal: Writer) -> UploadOut:
        payload = await read_limited(file, get_settings().max_upload_bytes)
        return await run_in_threadpool(service.upload_cmapss, principal, payload)

    @router.get(
        "/assets/{asset_id}/health",
        response_model=HealthOut,
        summary="Remaining useful life with its interval, or failure risk, and the decision",
    )
    def asset_health(asset_id: AssetId, request: Request, principal: Reader) -> HealthOut:
        return service.health(principal, asset_id, audit_context(request, principal, NAME))

    @router.get("/fleet", response_model=FleetOut, summary="Assets ranked by risk")
    def fleet(
        request: Request,
        principal: Reader,
        limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
        order: FleetOrder = "risk",
    ) -> FleetOut:
        ctx = audit_context(request, principal, NAME)
        return service.fleet(principal, limit=limit, order=order, ctx=ctx)

    @router.post(
        "/machines:score",
        response_model=MachineScoreOut,
        summary="Failure risk of a machine-tool reading, with likely failure modes",
    )
    def score_machine(body: MachineScoreIn, request: Request, principal: Writer) -> Any:
        return service.score_machine(audit_context(request, principal, NAME), principal, body)

    @router.post(
        "/assets/{asset_id}/outcome",
        response_model=OutcomeOut,
        summary="What happened to a machine tool: labels its newest scored reading",
    )
    def record_outcome(asset_id: AssetId, body: OutcomeIn, principal: Writer) -> OutcomeOut:
        return service.record_outcome(principal, asset_id, body)

    router.include_router(
        labels_router(
            LabelingRoutes(
                domain=NAME,
                labels={FAILURE: outcomes.LABELS},
                read_scope=f"{NAME}:read",
                write_scope=f"{NAME}:write",
                annotate=True,
            )
        )
    )
    return router
