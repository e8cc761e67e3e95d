"""The medical router, mounted at ``/v1/medical``.

Scopes: ``medical:write`` to upload studies and review them, ``medical:read`` to read studies,
heatmaps, FHIR reports and SRs (``medical:*`` grants both).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Header, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from verticals.core.auth import Principal
from verticals.core.labeling.router import LabelingRoutes, labels_router
from verticals.core.serving.deps import audit_context, require_scope
from verticals.core.serving.uploads import read_limited
from verticals.domains.medical.queue import task_labels
from verticals.domains.medical.schemas import (
    ReviewIn,
    ReviewOut,
    StudyCreated,
    StudyList,
    StudyOut,
    StudyStatus,
)
from verticals.domains.medical.service import StudyService
from verticals.domains.medical.settings import get_medical_settings

READ = "medical:read"
WRITE = "medical:write"
DOMAIN = "medical"

Reader = Annotated[Principal, Depends(require_scope(READ))]
Writer = Annotated[Principal, Depends(require_scope(WRITE))]


async def _read_limited(upload: UploadFile) -> bytes:
    """The upload's bytes, refusing (413) as soon as it passes the medical upload limit."""
    return await read_limited(upload, get_medical_settings().max_upload_bytes)


def build_router(service_getter: Callable[[], StudyService]) -> APIRouter:
    router = APIRouter(tags=[DOMAIN])

    def service() -> StudyService:
        return service_getter()

    @router.post(
        "/studies",
        response_model=StudyCreated,
        status_code=201,
        summary="Upload a DICOM file, a zipped DICOM series, or a PNG/JPEG; get findings",
    )
    async def create_study(
        request: Request,
        principal: Writer,
        file: UploadFile,
        task: Annotated[str | None, Form(max_length=64)] = None,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    ) -> StudyCreated:
        data = await _read_limited(file)
        ctx = audit_context(request, principal, DOMAIN)
        return await run_in_threadpool(
            service().create,
            data,
            filename=file.filename or "",
            task=task,
            ctx=ctx,
            idempotency_key=idempotency_key,
        )

    @router.get("/studies", response_model=StudyList, summary="Recent studies (the worklist)")
    def list_studies(
        principal: Reader,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        status: StudyStatus | None = None,
    ) -> StudyList:
        return StudyList(
            studies=service().list(limit=limit, status=status, tenant=principal.tenant)
        )

    @router.get("/studies/{study_id}", response_model=StudyOut)
    def get_study(study_id: str, principal: Reader) -> StudyOut:
        return service().get(study_id, tenant=principal.tenant)

    @router.get(
        "/studies/{study_id}/heatmap.png",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
        summary="Grad-CAM overlay on the analysed region",
    )
    def get_heatmap(study_id: str, principal: Reader) -> Response:
        return Response(
            service().heatmap(study_id, tenant=principal.tenant), media_type="image/png"
        )

    @router.get(
        "/studies/{study_id}/report.fhir.json",
        response_class=JSONResponse,
        summary="FHIR R4 DiagnosticReport",
    )
    def get_fhir(study_id: str, principal: Reader) -> JSONResponse:
        return JSONResponse(
            service().fhir_report(study_id, tenant=principal.tenant),
            media_type="application/fhir+json",
        )

    @router.get(
        "/studies/{study_id}/sr.dcm",
        response_class=Response,
        responses={200: {"content": {"application/dicom": {}}}},
        summary="DICOM Comprehensive 3D SR referencing the de-identified image",
    )
    def get_sr(study_id: str, principal: Reader) -> Response:
        return Response(
            service().structured_report(study_id, tenant=principal.tenant),
            media_type="application/dicom",
            headers={"Content-Disposition": f'attachment; filename="{study_id}-sr.dcm"'},
        )

    @router.post(
        "/studies/{study_id}/review",
        response_model=ReviewOut,
        status_code=201,
        summary="A clinician confirms or corrects the finding (stored as feedback)",
    )
    def review_study(study_id: str, body: ReviewIn, principal: Writer) -> ReviewOut:
        return service().review(study_id, body, actor=principal)

    router.include_router(
        labels_router(
            LabelingRoutes(
                domain=DOMAIN,
                labels=task_labels(),
                read_scope=READ,
                write_scope=WRITE,
            )
        )
    )
    return router
