"""HTTP hardening as one pure ASGI middleware: security headers, rate-limit headers, HEAD where
GET is, OPTIONS and 405 answers that list every method of the path."""

from __future__ import annotations

from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.routing import Match, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]
# Patient images, card transactions: nothing under /v1 may be kept by a cache or a browser.
_NO_STORE = (b"cache-control", b"no-store")


MethodTable = list[tuple[Any, frozenset[str] | None, Any]]  # (path regex, methods, route)


def method_table(app: Any) -> MethodTable:
    """Every route of ``app`` (those of included routers too) with its full path pattern and
    methods; ``None`` methods (a mount) answer what the mounted app answers, taken as GET."""
    table: MethodTable = []
    for context in iter_route_contexts(getattr(getattr(app, "router", None), "routes", [])):
        methods = getattr(context.original_route, "methods", None)
        if context.path and methods:
            table.append((compile_path(context.path)[0], frozenset(methods), None))
        else:
            table.append((None, None, context.route))
    return table


def allowed_methods(table: MethodTable, scope: Scope) -> list[str]:
    """Every method some route answers at ``scope``'s path (HEAD with GET, and OPTIONS once
    any route matches); empty when no route has the path."""
    path = scope.get("path", "")
    probe = {**scope, "type": "http", "method": "GET"}
    methods: set[str] = set()
    for regex, route_methods, route in table:
        if regex is not None and route_methods is not None:
            if regex.match(path):
                methods |= route_methods
        elif route is not None and route.matches(probe)[0] is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or {"GET"})
    if "GET" in methods:
        methods.add("HEAD")
    if methods:
        methods.add("OPTIONS")
    return sorted(methods)


class HardeningMiddleware:
    """Adds ``X-Content-Type-Options: nosniff`` (and ``X-Frame-Options: DENY``) to every
    response, ``Cache-Control: no-store`` under ``/v1``, and the ``RateLimit-*`` headers a
    request's rate-limit check left on its state. Answers ``OPTIONS`` itself (204 with
    ``Allow``), ``HEAD`` as the ``GET`` without its body, and makes a 405's ``Allow`` list every
    method of the path, not only the first route's."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._table: MethodTable | None = None

    def _methods(self, scope: Scope) -> list[str]:
        if self._table is None:  # built on first use: every router is included by then
            self._table = method_table(scope.get("app"))
        return allowed_methods(self._table, scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})  # shared with the copy a HEAD request makes below
        path: str = scope.get("path", "")
        private = path.startswith("/v1/")
        method = scope.get("method", "")
        if method == "OPTIONS":
            methods = self._methods(scope)
            if methods:
                await self._options(send, methods, private)
                return
        head = method == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}

        async def hardened_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not (message["status"] == 405 and k.lower() == b"allow")
                ]
                present = {k.lower() for k, _ in headers}
                headers += [h for h in _ALWAYS if h[0] not in present]
                if private and _NO_STORE[0] not in present:
                    headers.append(_NO_STORE)
                limits = (scope.get("state") or {}).get("rate_limit_headers") or {}
                headers += [
                    (k.lower().encode(), v.encode())
                    for k, v in limits.items()
                    if k.lower().encode() not in present
                ]
                if message["status"] == 405:
                    allow = ", ".join(self._methods(scope))
                    headers.append((b"allow", allow.encode()))
                message = {**message, "headers": headers}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app(scope, receive, hardened_send)

    @staticmethod
    async def _options(send: Send, methods: list[str], private: bool) -> None:
        headers = [(b"allow", ", ".join(methods).encode()), *_ALWAYS]
        if private:
            headers.append(_NO_STORE)
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
