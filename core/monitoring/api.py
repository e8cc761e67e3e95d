"""``/v1/ops``: drift reports and alerts (scopes ``ops:read`` / ``ops:write``)."""

from __future__ import annotations

import threading
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.concurrency import run_in_threadpool
from verticals.core.auth import Principal
from verticals.core.db.session import session_scope
from verticals.core.monitoring import gauges  # noqa: F401 - /metrics declares them from the start
from verticals.core.monitoring.alerts import AlertOut, DeliveryOut, acknowledge, list_alerts
from verticals.core.monitoring.service import DriftReport, report_for
from verticals.core.monitoring.settings import monitor_settings
from verticals.core.monitoring.sinks import dispatch
from verticals.core.plugins import PluginRegistry
from verticals.core.serving.deps import require_scope


def build_ops_router() -> APIRouter:
    router = APIRouter(prefix="/v1/ops", tags=["ops"])

    @router.get("/drift", response_model=DriftReport)
    async def drift(
        request: Request,
        _: Annotated[Principal, Depends(require_scope("ops:read"))],
        domain: Annotated[str, Query(max_length=64)],
        model: Annotated[str | None, Query(max_length=120)] = None,
    ) -> DriftReport:
        """Per watched feature: statistic, value, threshold, drifted; the windows compared."""
        plugins: PluginRegistry = request.app.state.plugins
        return await run_in_threadpool(report_for, plugins, domain, model)

    @router.get("/alerts", response_model=list[AlertOut])
    def alerts(
        _: Annotated[Principal, Depends(require_scope("ops:read"))],
        state: Literal["open", "firing", "acknowledged", "resolved"] | None = None,
        domain: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[AlertOut]:
        with session_scope() as session:
            return list_alerts(session, state=state, domain=domain, limit=limit)

    @router.get("/deliveries", response_model=list[DeliveryOut])
    def deliveries(
        _: Annotated[Principal, Depends(require_scope("ops:read"))],
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    ) -> list[DeliveryOut]:
        from verticals.core.monitoring.alerts import list_deliveries

        with session_scope() as session:
            return list_deliveries(session, limit)

    @router.post("/alerts/{alert_id}:ack", response_model=AlertOut)
    def ack(
        alert_id: Annotated[int, Path(ge=1, le=2**31 - 1)],  # an INTEGER column (32-bit), or 422
        principal: Annotated[Principal, Depends(require_scope("ops:write"))],
    ) -> AlertOut:
        """Acknowledge a firing alert; the transition goes to the sinks in the background."""
        with session_scope() as session:
            change = acknowledge(session, alert_id, principal.name)
        threading.Thread(target=dispatch, args=([change], monitor_settings()), daemon=True).start()
        return change.alert

    return router
