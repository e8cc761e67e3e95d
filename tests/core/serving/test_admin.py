"""/v1/admin: tenants and keys for a caller with the admin scope, each change audited."""

from __future__ import annotations

import pytest


@pytest.fixture
def admin_client(db):
    from fastapi.testclient import TestClient
    from verticals.core.plugins import PluginRegistry
    from verticals.core.serving.app import build_app

    app = build_app(PluginRegistry(), max_request_bytes=1 << 16)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_an_admin_creates_a_tenant_and_its_key_and_the_key_works(admin_client, make_key):
    from verticals.core.audit import recent_actions
    from verticals.core.db import session_scope

    admin = _auth(make_key(["admin"]))
    assert (
        admin_client.post("/v1/admin/tenants", json={"name": "bank-a"}, headers=admin).status_code
        == 201
    )
    again = admin_client.post("/v1/admin/tenants", json={"name": "bank-a"}, headers=admin)
    assert again.status_code == 409
    assert "bank-a" in [
        t["name"] for t in admin_client.get("/v1/admin/tenants", headers=admin).json()["tenants"]
    ]
    created = admin_client.post(
        "/v1/admin/keys",
        json={"name": "etl", "scopes": ["metrics:read"], "tenant": "bank-a", "expires_in_days": 30},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["info"]["tenant"] == "bank-a" and body["info"]["expires_at"]
    assert admin_client.get("/metrics", headers=_auth(body["key"])).status_code == 200
    listed = admin_client.get("/v1/admin/keys?tenant=bank-a", headers=admin).json()["keys"]
    assert [k["id"] for k in listed] == [body["info"]["id"]] and "key" not in listed[0]
    with session_scope() as session:
        actions = [a.action for a in recent_actions(session)]
    assert {"tenant.create", "key.create"} <= set(actions)


def test_revoke_and_rotate(admin_client, make_key):
    admin = _auth(make_key(["admin"]))
    key = admin_client.post(
        "/v1/admin/keys", json={"name": "k", "scopes": ["metrics:read"]}, headers=admin
    ).json()
    key_id = key["info"]["id"]
    rotated = admin_client.post(
        f"/v1/admin/keys/{key_id}:rotate", json={"grace_minutes": 0}, headers=admin
    )
    assert rotated.status_code == 201 and rotated.json()["key"] != key["key"]
    assert admin_client.get("/metrics", headers=_auth(key["key"])).status_code == 401  # no grace
    assert admin_client.get("/metrics", headers=_auth(rotated.json()["key"])).status_code == 200
    new_id = rotated.json()["info"]["id"]
    assert admin_client.post(f"/v1/admin/keys/{new_id}:revoke", headers=admin).status_code == 200
    assert admin_client.get("/metrics", headers=_auth(rotated.json()["key"])).status_code == 401
    assert admin_client.post("/v1/admin/keys/999999:revoke", headers=admin).status_code == 404
    # past a 32-bit INTEGER column (PostgreSQL): refused as input, never a database error
    assert admin_client.post(f"/v1/admin/keys/{2**31}:revoke", headers=admin).status_code == 422
    own_id = admin_client.get("/v1/admin/keys", headers=admin).json()["keys"][0]["id"]
    assert admin_client.post(f"/v1/admin/keys/{own_id}:revoke", headers=admin).status_code == 409


def test_only_the_admin_scope_reaches_the_routes(admin_client, make_key):
    other = _auth(make_key(["finance:score", "ops:write"]))
    assert admin_client.get("/v1/admin/keys", headers=other).status_code == 403
    assert admin_client.get("/v1/admin/keys").status_code == 401
    bad = admin_client.post(
        "/v1/admin/keys",
        json={"name": "x", "scopes": ["not a scope"]},
        headers=_auth(make_key(["admin"])),
    )
    assert bad.status_code == 422 and "scope" in bad.text
