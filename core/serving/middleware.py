"""Pure ASGI middleware: request ids, request body limits, Prometheus HTTP metrics."""

from __future__ import annotations

import json
import random
import re
import time
from functools import lru_cache
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from verticals.core.metrics import REQUEST_LATENCY, REQUESTS, SHED_REQUESTS
from verticals.core.monitoring import traffic
from verticals.core.serving.deps import route_template

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def new_request_id() -> str:
    """32 random hex digits. Not ``uuid4()``: its ``os.urandom`` syscall releases the GIL on
    the event loop, which then waits up to a switch interval (5 ms) to get it back from a busy
    worker thread — measured as 7% of the loop's time under load. Request ids need to be
    unique, not unpredictable."""
    return f"{random.getrandbits(128):032x}"


@lru_cache(maxsize=4096)
def _request_counter(route: str, method: str, status: int, domain: str) -> Any:
    return REQUESTS.labels(route, method, str(status), domain)


@lru_cache(maxsize=1024)
def _latency_histogram(route: str, domain: str) -> Any:
    return REQUEST_LATENCY.labels(route, domain)


class _BodyTooLarge(Exception):
    pass


class RequestContextMiddleware:
    """Assigns a request id, limits the body size (413) and records HTTP metrics."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied, declared = "", None
        for name, value in scope["headers"]:  # ASGI header names are lower-case bytes
            if name == b"x-request-id":
                supplied = value.decode("latin-1")
            elif name == b"content-length":
                declared = value.decode("latin-1")
        request_id = supplied if _REQUEST_ID.match(supplied) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = {"code": 500, "sent": False, "shed": False}

        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send, request_id)
            self._observe(scope, 413, started)
            return

        received = 0
        # A body cut short raises inside whatever reads it, and a reader may turn that into
        # its own answer (FastAPI's form parsing answers 400): the answer is 413 all the same.
        exceeded = {"limit": False, "replaced": False}

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    exceeded["limit"] = True
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            if exceeded["limit"]:
                if message["type"] == "http.response.start" and not status["sent"]:
                    status["sent"] = exceeded["replaced"] = True
                    status["code"] = 413
                    await self._too_large(send, request_id)
                if exceeded["replaced"]:
                    return
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = True
                # shed, not broken: a 503 that asks to come back (Overloaded), unlike a model
                # that is not loaded (503 without Retry-After)
                status["shed"] = status["code"] == 503 and any(
                    k.lower() == b"retry-after" for k, _ in message.get("headers", ())
                )
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not status["sent"]:
                await self._too_large(send, request_id)
            status["code"] = 413
        finally:
            self._observe(scope, status["code"], started, shed=bool(status["shed"]))

    async def _too_large(self, send: Send, request_id: str) -> None:
        body = json.dumps(
            {
                "error": {
                    "code": "payload_too_large",
                    "message": f"request body exceeds the limit of {self.max_body_bytes} bytes",
                    "details": {"limit_bytes": self.max_body_bytes},
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _observe(scope: Scope, status: int, started: float, *, shed: bool = False) -> None:
        template = route_template(scope)
        path = scope.get("path", "")
        domain = path.split("/")[2] if path.startswith("/v1/") and path.count("/") >= 2 else ""
        _request_counter(template or "unmatched", scope.get("method", ""), status, domain).inc()
        _latency_histogram(template or "unmatched", domain).observe(time.perf_counter() - started)
        if domain and template is not None:  # a routed path: domain names stay a bounded set
            traffic.count(domain, shed=shed, error=status >= 500)
            if shed:
                SHED_REQUESTS.labels(domain).inc()
