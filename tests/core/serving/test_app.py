"""The gateway: health, readiness, metrics, auth on every /v1 route, one error format."""

from __future__ import annotations

import re


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_healthz_and_readyz_report_database_and_domains(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["database"]["ready"] is True
    assert ready["domains"]["echo"] == {"ready": True, "model_version": "1", "detail": ""}


def test_third_party_plugin_is_mounted_and_documented(client, make_key):
    key = make_key(["echo:score"])
    response = client.post("/v1/echo/score", json={"values": [2, 0, 1]}, headers=_auth(key))
    assert response.status_code == 200
    assert response.json() == {"score": 2.1, "model_version": "1"}
    spec = client.get("/openapi.json").json()
    assert "/v1/echo/score" in spec["paths"]
    assert "echo" in [tag["name"] for tag in spec["tags"]]


def test_missing_unknown_and_revoked_keys_are_401(client, make_key):
    body = {"values": [1, 2, 3]}
    missing = client.post("/v1/echo/score", json=body)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthenticated"
    assert client.post("/v1/echo/score", json=body, headers=_auth("vk_nope")).status_code == 401

    from verticals.core.auth import list_keys, revoke_key
    from verticals.core.db import session_scope

    key = make_key(["*"])
    assert client.post("/v1/echo/score", json=body, headers={"X-API-Key": key}).status_code == 200
    with session_scope() as session:
        key_id = list_keys(session)[-1].id
        revoke_key(session, key_id)
    assert client.post("/v1/echo/score", json=body, headers=_auth(key)).status_code == 401


def test_wrong_scope_is_403_at_mount_and_at_route(client, make_key):
    other_domain = make_key(["finance:score"])
    response = client.post(
        "/v1/echo/score", json={"values": [1, 2, 3]}, headers=_auth(other_domain)
    )
    assert response.status_code == 403
    same_domain_other_action = make_key(["echo:read"])
    response = client.post(
        "/v1/echo/score", json={"values": [1, 2, 3]}, headers=_auth(same_domain_other_action)
    )
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {"required": "echo:score"}


def test_malformed_json_wrong_types_and_nan_are_4xx(client, make_key):
    headers = {**_auth(make_key(["*"])), "content-type": "application/json"}
    malformed = client.post("/v1/echo/score", content=b"{not json", headers=headers)
    assert malformed.status_code == 422
    assert malformed.json()["error"]["code"] == "invalid_input"
    wrong_type = client.post("/v1/echo/score", json={"values": ["a", 2, 3]}, headers=headers)
    assert wrong_type.status_code == 422
    assert wrong_type.json()["error"]["details"][0]["loc"] == ["body", "values", 0]
    missing = client.post("/v1/echo/score", json={}, headers=headers)
    assert missing.status_code == 422
    nan = client.post("/v1/echo/score", content=b'{"values": [NaN, 1, 2]}', headers=headers)
    assert nan.status_code == 422


def test_unexpected_error_is_500_with_request_id_and_no_traceback(client, make_key):
    response = client.get("/v1/echo/boom", headers=_auth(make_key(["*"])))
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["code"] == "internal_error"
    assert "secret internal detail" not in response.text
    assert body["error"]["details"]["request_id"] == response.headers["x-request-id"]


def test_oversized_body_is_413(client, make_key, monkeypatch):
    from fastapi.testclient import TestClient
    from verticals.core.plugins import discover
    from verticals.core.serving.app import build_app

    small = build_app(discover(), max_request_bytes=100)
    with TestClient(small) as tiny:
        response = tiny.post(
            "/v1/echo/score", content=b"x" * 500, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_unknown_route_uses_the_error_format(client):
    response = client.get("/v1/nosuchdomain/x")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_metrics_count_requests_per_route_and_domain(client, make_key):
    client.post("/v1/echo/score", json={"values": [1, 1, 1]}, headers=_auth(make_key(["*"])))
    text = client.get("/metrics", headers=_auth(make_key(["metrics:read"]))).text
    assert (
        'verticals_http_requests_total{domain="echo",method="POST",route="/v1/echo/score",status="200"}'
        in text
    )
    assert 'verticals_predictions_total{domain="echo",model="linear",version="1"}' in text


def test_request_id_is_echoed_when_supplied(client):
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"


def test_request_ids_are_generated_unique_when_missing_or_malformed(client):
    ids = [
        client.get("/healthz", headers={"X-Request-ID": "bad id; drop"}).headers["x-request-id"],
        *(client.get("/healthz").headers["x-request-id"] for _ in range(50)),
    ]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_every_domain_is_closed_at_stop_even_after_one_fails(db):
    from fastapi import APIRouter
    from fastapi.testclient import TestClient
    from verticals.core.plugins import Domain, PluginRegistry
    from verticals.core.serving.app import build_app

    closed: list[str] = []

    class Stub(Domain):
        title = "stub"

        def __init__(self, name: str, fails: bool = False) -> None:
            self.name, self.fails = name, fails

        def router(self) -> APIRouter:
            return APIRouter()

        def render_page(self, viewer) -> None:  # noqa: ANN001
            pass

        def evaluate(self, data_file, **options):  # noqa: ANN001, ANN003, ANN201
            return {}

        def ensure_production_model(self) -> str:
            return "1"

        def close(self) -> None:
            closed.append(self.name)
            if self.fails:
                raise RuntimeError("close failed")

    domains = {"a": Stub("a", fails=True), "b": Stub("b")}
    with TestClient(build_app(PluginRegistry(domains=domains), max_request_bytes=1000)):
        assert closed == []
    assert closed == ["a", "b"]
