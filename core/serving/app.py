"""The API app factory: mounts every domain's router at ``/v1/<name>`` behind API-key auth."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from verticals.core.config import Settings, get_settings
from verticals.core.db import get_engine
from verticals.core.labeling.api import build_retrain_router
from verticals.core.monitoring.api import build_ops_router
from verticals.core.monitoring.evaluator import start_evaluator
from verticals.core.plugins import Domain, DomainStatus, PluginRegistry
from verticals.core.serving.admin import build_admin_router
from verticals.core.serving.contract import ERROR_RESPONSES, install_contract
from verticals.core.serving.deps import current_principal, require_domain_access
from verticals.core.serving.docs import install_docs
from verticals.core.serving.errors import install_error_handlers
from verticals.core.serving.hardening import HardeningMiddleware
from verticals.core.serving.middleware import RequestContextMiddleware
from verticals.core.serving.ratelimit import RateLimits

log = logging.getLogger("verticals.api")


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    database: DomainStatus
    domains: dict[str, DomainStatus]
    plugin_failures: dict[str, str]


def _start_domain(domain: Domain) -> str | None:
    """Register/load the domain's production model; returns an error text instead of raising."""
    try:
        domain.ensure_production_model()
        domain.setup()
        return None
    except Exception as exc:  # one broken domain must not stop the others
        log.exception("domain %r failed to start", domain.name)
        return f"{type(exc).__name__}: {exc}"


def _database_status() -> DomainStatus:
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return DomainStatus(ready=True, detail=get_engine().dialect.name)
    except Exception as exc:  # noqa: BLE001 - any database failure is "not ready", with why
        return DomainStatus(ready=False, detail=f"{type(exc).__name__}: {exc}")


def _domain_status(domain: Domain, start_error: str | None) -> DomainStatus:
    if start_error is not None:
        return DomainStatus(ready=False, detail=start_error)
    try:
        return domain.status()
    except Exception as exc:  # noqa: BLE001 - a plugin's status must not break /readyz
        return DomainStatus(ready=False, detail=f"{type(exc).__name__}: {exc}")


def build_app(
    plugins: PluginRegistry,
    *,
    max_request_bytes: int,
    title: str = "verticals",
    version: str = "0.1.0",
    settings: Settings | None = None,
) -> FastAPI:
    """The API. ``settings`` (default: the environment's) give its rate limits, CORS origins
    and who may read ``/metrics``."""
    settings = settings or get_settings()
    start_errors: dict[str, str | None] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for name, domain in plugins.domains.items():
            start_errors[name] = await run_in_threadpool(_start_domain, domain)
        # What startup loaded (libraries, models: ~700k objects) stays for the process's life:
        # keep it out of the cyclic collector, whose full passes over it stall every request
        # for ~0.3 s (the p99 of the scoring API). No gc.collect() first: it costs ~0.4 s per
        # app start, and the little startup garbage this pins is freed by unfreeze() below.
        gc.freeze()
        evaluator = start_evaluator(plugins)  # monitoring: drift and alerts, lease-guarded
        yield
        if evaluator is not None:
            evaluator.stop()
        for domain in plugins.domains.values():
            try:
                domain.close()
            except Exception:
                log.exception("domain %r failed to close", domain.name)
        gc.unfreeze()  # an app stopped inside a longer-lived process (tests) frees its objects

    app = FastAPI(
        title=title,
        version=version,
        lifespan=lifespan,
        # Metrics are Prometheus (/metrics). FastAPI's native OpenTelemetry, left on, probes the
        # global OTel providers (environment lookups) on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        openapi_tags=[{"name": d.name, "description": d.title} for d in plugins.domains.values()],
        docs_url=None,  # FastAPI's pages load from a CDN; install_docs serves them locally
        redoc_url=None,
    )
    install_docs(app)
    install_contract(app)
    app.state.plugins = plugins
    app.state.rate_limits = RateLimits.from_settings(settings)
    install_error_handlers(app)
    # Last added runs first: CORS (preflights), then hardening headers, then ids and limits.
    app.add_middleware(RequestContextMiddleware, max_body_bytes=max_request_bytes)
    app.add_middleware(HardeningMiddleware)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "X-API-Key",
                "Content-Type",
                "X-Request-ID",
                "Idempotency-Key",
            ],
            expose_headers=[
                "X-Request-ID",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ],
            allow_credentials=False,  # keys travel in headers, never in cookies
            max_age=600,
        )

    @app.get("/healthz", response_model=Health, tags=["ops"])
    def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Readiness,
        tags=["ops"],
        responses={503: {"model": Readiness, "description": "Not ready: see which part"}},
    )
    def readyz() -> Any:
        report = Readiness(
            ready=False,
            database=_database_status(),
            domains={
                name: _domain_status(domain, start_errors.get(name))
                for name, domain in plugins.domains.items()
            },
            plugin_failures=dict(plugins.failures),
        )
        report.ready = (
            report.database.ready
            and all(s.ready for s in report.domains.values())
            and not report.plugin_failures
        )
        return JSONResponse(
            report.model_dump(mode="json"), status_code=200 if report.ready else 503
        )

    metrics_public = settings.metrics_public

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """Prometheus text. Needs a key with ``metrics:read`` unless ``metrics_public``
        (counts per route and domain tell an outsider what the deployment does)."""
        if not metrics_public:
            (await current_principal(request)).require("metrics:read")
        return Response(await run_in_threadpool(generate_latest), media_type=CONTENT_TYPE_LATEST)

    for name, domain in plugins.domains.items():
        try:
            router = domain.router()
        except Exception as exc:
            log.exception("domain %r has no usable router", name)
            plugins.failures[name] = f"router: {type(exc).__name__}: {exc}"
            continue
        app.include_router(
            router,
            prefix=f"/v1/{name}",
            tags=[name],
            dependencies=[Depends(require_domain_access(name))],
            responses=ERROR_RESPONSES,
        )
    app.include_router(build_ops_router(), responses=ERROR_RESPONSES)
    app.include_router(build_retrain_router(), responses=ERROR_RESPONSES)
    app.include_router(build_admin_router(), responses=ERROR_RESPONSES)
    return app
