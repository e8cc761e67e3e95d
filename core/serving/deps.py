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
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from verticals.core.audit import AuditContext
from verticals.core.auth import Principal, authenticate, cached_principal
from verticals.core.db.session import session_scope
from verticals.core.errors import Forbidden, Unauthenticated

if TYPE_CHECKING:
    from verticals.core.serving.ratelimit import RateLimits


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


def _rate_limits(request: Request) -> RateLimits | None:
    return getattr(request.app.state, "rate_limits", None)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def current_principal(request: Request) -> Principal:
    """The caller; async so the usual case (a key seen in the last seconds) costs no thread hop,
    and only a cache miss goes to the database, on a worker thread.

    A key not seen recently is looked up only while its client address has failed attempts
    left (429 after that, see :mod:`verticals.core.serving.ratelimit`); each unknown key spends
    one."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    key = api_key_from(request)
    principal = cached_principal(key)
    if principal is None:
        limits = _rate_limits(request)
        address = client_address(request)
        if limits is not None:
            await limits.check_address(address)
        try:
            principal = await run_in_threadpool(_authenticate, key)
        except Unauthenticated:
            if limits is not None:
                await limits.failed(address)
            raise
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
        await charge_rate_limit(request, principal)  # once per request, whoever asks first
        return principal

    dependency.__name__ = f"require_{scope.replace(':', '_').replace('*', 'any')}"
    dependency.required_scope = scope  # type: ignore[attr-defined]  # read by route_scopes
    return dependency


_ROUTE_SCOPES: dict[int, tuple[Any, tuple[str, ...]]] = {}


def route_scopes(route: Any) -> tuple[str, ...]:
    """The scopes a route demands through :func:`require_scope`, in dependency order."""
    known = _ROUTE_SCOPES.get(id(route))
    if known is not None and known[0] is route:
        return known[1]
    scopes = _find_scopes(route)
    if len(_ROUTE_SCOPES) > 4096:
        _ROUTE_SCOPES.clear()
    _ROUTE_SCOPES[id(route)] = (route, scopes)  # the route is kept, so its id stays its own
    return scopes


def _find_scopes(route: Any) -> tuple[str, ...]:
    found: list[str] = []
    stack = list(getattr(getattr(route, "dependant", None), "dependencies", []))
    while stack:
        dep = stack.pop(0)
        scope = getattr(dep.call, "required_scope", None)
        if scope is not None and scope not in found:
            found.append(scope)
        stack.extend(dep.dependencies)
    return tuple(found)


async def charge_rate_limit(request: Request, principal: Principal) -> None:
    """Spend one request of the caller's budget (once per request); 429 when it is empty.
    The ``RateLimit-*`` headers ride on ``request.state`` to the response."""
    limits = _rate_limits(request)
    if limits is None or getattr(request.state, "rate_charged", False):
        return
    request.state.rate_charged = True
    decision = await limits.charge(principal, route_scopes(request.scope.get("route")))
    if decision is not None:
        request.state.rate_limit_headers = decision.headers()


def require_domain_access(domain: str) -> Callable[[Request], Awaitable[Principal]]:
    """Mounted on every ``/v1/<domain>`` router: any scope of that domain (or ``*``)."""

    async def dependency(request: Request) -> Principal:
        principal = await current_principal(request)
        if not principal.allows_domain(domain):
            raise Forbidden(f"this API key has no scope for the {domain!r} domain")
        await charge_rate_limit(request, principal)
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
