"""FastAPI dependencies shared by every domain router.

Route signatures read as typed sentences::

    @router.post("/things:score", response_model=ScoreOut)
    def score(body: ScoreIn, request: Request,
              principal: Annotated[Principal, Depends(require_scope("mydomain:score"))]):
        ctx = audit_context(request, principal, "mydomain")
        ...
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from verticals.core.audit import AuditContext
from verticals.core.auth import Principal, authenticate, cached_principal
from verticals.core.db.session import session_scope
from verticals.core.errors import Forbidden


def api_key_from(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.headers.get("x-api-key") or None


def _authenticate(key: str | None) -> Principal:
    with session_scope() as session:
        return authenticate(session, key)


async def current_principal(request: Request) -> Principal:
    """The caller; async so the usual case (a key seen in the last seconds) costs no thread hop,
    and only a cache miss goes to the database, on a worker thread."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    key = api_key_from(request)
    principal = cached_principal(key)
    if principal is None:
        principal = await run_in_threadpool(_authenticate, key)
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


# The two below take the Request rather than depending on ``current_principal``: a flat
# dependency graph is measurably cheaper for FastAPI to solve on every request, and the
# principal is kept on ``request.state`` after the first lookup.


def require_scope(scope: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that authenticates the caller and demands ``scope`` (401, then 403)."""

    async def dependency(request: Request) -> Principal:
        principal = await current_principal(request)
        principal.require(scope)
        return principal

    dependency.__name__ = f"require_{scope.replace(':', '_').replace('*', 'any')}"
    return dependency


def require_domain_access(domain: str) -> Callable[[Request], Awaitable[Principal]]:
    """Mounted on every ``/v1/<domain>`` router: any scope of that domain (or ``*``)."""

    async def dependency(request: Request) -> Principal:
        principal = await current_principal(request)
        if not principal.allows_domain(domain):
            raise Forbidden(f"this API key has no scope for the {domain!r} domain")
        return principal

    return dependency


def request_id(request: Request) -> str:
    return getattr(request.state, "request_id", "") or "unknown"


def route_template(scope: Mapping[str, Any]) -> str | None:
    """The matched route's full path template (``/v1/finance/transactions/{id}``), if any."""
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    path = getattr(context, "path", None)
    if path:
        return path
    return getattr(scope.get("route"), "path", None)


def audit_context(request: Request, principal: Principal, domain: str) -> AuditContext:
    path = route_template(request.scope) or request.url.path
    return AuditContext(
        request_id=request_id(request),
        api_key_id=principal.key_id,
        user_id=principal.user_id,
        domain=domain,
        route=f"{request.method} {path}",
        tenant=principal.tenant,
    )
