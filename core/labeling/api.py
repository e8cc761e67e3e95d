"""``/v1/ops/retrain``: queue a retraining job (``ops:write``) and list jobs (``ops:read``);
``/v1/ops/shadow``: a staged challenger's shadow comparison with its champion (``ops:read``).

The API only queues: a worker (``verticals retrain all --worker``) runs the job outside the
API process. Queuing twice for one domain/model returns the job already waiting.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from verticals.core.auth import Principal
from verticals.core.db.session import session_scope
from verticals.core.errors import InvalidInput
from verticals.core.labeling.jobs import (
    RetrainJobCreate,
    RetrainJobOut,
    job_out,
    list_jobs,
    queue_job,
)
from verticals.core.labeling.shadow import ShadowReport, shadow_report_for
from verticals.core.plugins import PluginRegistry
from verticals.core.serving.deps import require_scope


def build_retrain_router() -> APIRouter:
    router = APIRouter(prefix="/v1/ops", tags=["ops"])

    @router.post("/retrain", response_model=RetrainJobOut, status_code=202)
    def queue_retrain(
        body: RetrainJobCreate,
        request: Request,
        response: Response,
        principal: Annotated[Principal, Depends(require_scope("ops:write"))],
    ) -> RetrainJobOut:
        """Queue a retrain of ``domain`` (``model``: default its first retrainable one); 200
        with the job already waiting for the same domain/model."""
        plugins: PluginRegistry = request.app.state.plugins
        recipe = plugins.get(body.domain).retraining()
        if recipe is None:
            raise InvalidInput(
                f"domain {body.domain!r} declares no retraining recipe", {"field": "domain"}
            )
        model = body.model or recipe.models[0]
        if model not in recipe.models:
            raise InvalidInput(
                f"{body.domain} cannot retrain {model!r}",
                {"field": "model", "known": list(recipe.models)},
            )
        with session_scope() as session:
            row, created = queue_job(
                session,
                domain=body.domain,
                model=model,
                trigger="manual",
                reason=body.reason,
                requested_by=principal.name,
            )
            out = job_out(row)
        if not created:
            response.status_code = 200
        return out

    @router.get("/retrain", response_model=list[RetrainJobOut])
    def retrain_jobs(
        _: Annotated[Principal, Depends(require_scope("ops:read"))],
        status: Literal["queued", "running", "promoted", "staged", "failed"] | None = None,
        domain: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[RetrainJobOut]:
        """Retrain jobs, newest first, with their reports (``result``) once finished."""
        with session_scope() as session:
            return list_jobs(session, status=status, domain=domain, limit=limit)

    @router.get("/shadow", response_model=ShadowReport)
    def shadow(
        request: Request,
        _: Annotated[Principal, Depends(require_scope("ops:read"))],
        domain: Annotated[str, Query(max_length=64)],
        model: Annotated[str | None, Query(max_length=120)] = None,
        version: Annotated[str | None, Query(max_length=120)] = None,
    ) -> ShadowReport:
        """The staged challenger (``version``, default the newest staged after production)
        against the champion on the same labelled live subjects it scored in shadow."""
        return shadow_report_for(request.app.state.plugins, domain, model, version)

    return router
