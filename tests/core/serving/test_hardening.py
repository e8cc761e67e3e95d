"""HTTP hardening and the contract core gives every route: headers, CORS, /metrics behind a
scope, HEAD and OPTIONS, 413 for a chunked body over the limit, error answers documented."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import FastAPI, File, UploadFile


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def echo_app(db):
    """The app with the echo plugin alone, under ``Settings(**overrides)``."""
    from fastapi.testclient import TestClient
    from verticals.core.config import Settings
    from verticals.core.plugins import discover
    from verticals.core.serving.app import build_app

    def build(**overrides):
        plugins = discover(include_test_plugins=True)
        plugins.domains = {"echo": plugins.domains["echo"]}
        settings = Settings(**overrides)
        return TestClient(
            build_app(plugins, max_request_bytes=1 << 16, settings=settings),
            raise_server_exceptions=False,
        )

    return build


def test_security_headers_everywhere_and_no_store_on_v1(echo_app, make_key):
    from verticals.core.config import Settings

    key = make_key(["echo:*"])
    default_limit = Settings.model_fields["rate_limit"].default  # tests run with limits off
    with echo_app(rate_limit=default_limit) as client:
        scored = client.post("/v1/echo/score", json={"values": [1, 2, 3]}, headers=_auth(key))
        refused = client.post("/v1/echo/score", json={"values": [1, 2, 3]})
        health = client.get("/healthz")
    for response in (scored, refused, health):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert scored.headers["Cache-Control"] == "no-store"
    assert refused.headers["Cache-Control"] == "no-store"
    assert "no-store" not in health.headers.get("Cache-Control", "")
    assert scored.headers["RateLimit-Limit"] == "100"  # the default: 100 a second per key


def test_cors_is_closed_by_default_and_open_to_configured_origins(echo_app):
    preflight = {
        "Origin": "https://bank.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    with echo_app() as client:
        closed = client.options("/v1/echo/score", headers=preflight)
        simple = client.get("/healthz", headers={"Origin": "https://bank.example"})
    assert "access-control-allow-origin" not in closed.headers
    assert "access-control-allow-origin" not in simple.headers
    with echo_app(cors_origins="https://bank.example") as client:
        allowed = client.options("/v1/echo/score", headers=preflight)
        other = client.options(
            "/v1/echo/score", headers={**preflight, "Origin": "https://evil.example"}
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://bank.example"
    assert "access-control-allow-origin" not in other.headers


def test_metrics_need_the_metrics_scope_unless_public(echo_app, make_key):
    with echo_app() as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=_auth(make_key(["echo:*"]))).status_code == 403
        scraped = client.get("/metrics", headers=_auth(make_key(["metrics:read"])))
        assert scraped.status_code == 200 and "verticals_http_requests_total" in scraped.text
    with echo_app(metrics_public=True) as client:
        assert client.get("/metrics").status_code == 200


def test_head_is_answered_where_get_is_and_options_lists_every_method(echo_app, make_key):
    key = make_key(["echo:*"])
    with echo_app() as client:
        got = client.get("/v1/echo/notes", headers=_auth(key))
        head = client.head("/v1/echo/notes", headers=_auth(key))
        options = client.options("/v1/echo/notes")
        wrong = client.delete("/v1/echo/notes", headers=_auth(key))
        assert client.head("/healthz").status_code == 200
    assert head.status_code == got.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"]
    assert options.status_code == 204
    assert options.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_every_domain_operation_documents_its_error_answers(echo_app):
    with echo_app() as client:
        spec = client.get("/openapi.json").json()
    operation = spec["paths"]["/v1/echo/score"]["post"]
    for status in ("400", "401", "403", "404", "409", "413", "415", "422", "429"):
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}, status
    assert operation["security"] == [{"bearer": []}, {"apiKey": []}]
    assert "HTTPValidationError" not in str(operation)


def test_nested_defs_are_hoisted_into_components():
    from pydantic import BaseModel
    from verticals.core.serving.contract import install_contract

    class Item(BaseModel):
        n: int

    class Batch(BaseModel):
        items: list[Item]

    app = FastAPI()

    @app.post(
        "/things",
        openapi_extra={
            "requestBody": {"content": {"application/json": {"schema": Batch.model_json_schema()}}}
        },
    )
    def things() -> None: ...

    install_contract(app)
    spec = app.openapi()
    body = spec["paths"]["/things"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["items"]["items"] == {"$ref": "#/components/schemas/Item"}
    assert "$defs" not in body["schema"]
    assert spec["components"]["schemas"]["Item"]["properties"]["n"]["type"] == "integer"


def test_a_chunked_upload_over_the_limit_is_413_not_400():
    from fastapi.testclient import TestClient
    from verticals.core.serving.errors import install_error_handlers
    from verticals.core.serving.middleware import RequestContextMiddleware

    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=10_000)

    @app.post("/upload")
    async def upload(file: Annotated[UploadFile, File()]) -> dict[str, int]:
        return {"size": len(await file.read())}

    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()

    def chunks(n: int):
        yield head
        for _ in range(n):
            yield b"x" * 1000
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    with TestClient(app) as client:
        small = client.post("/upload", content=chunks(2), headers=headers)
        large = client.post("/upload", content=chunks(50), headers=headers)
    assert small.status_code == 200 and small.json() == {"size": 2000}
    assert large.status_code == 413, large.text
    assert large.json()["error"]["code"] == "payload_too_large"
