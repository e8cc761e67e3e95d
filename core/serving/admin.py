"""``/v1/admin``: tenants and API keys for a caller holding the ``admin`` scope.

The same operations as ``verticals tenants`` and ``verticals keys`` (the operator's CLI), for a
bank's or hospital's own provisioning system. A created or rotated key is in the answer once
and never again (only its hash is stored); every change is logged under the admin key.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field
from verticals.core.audit import record_action
from verticals.core.auth import (
    ADMIN_SCOPE,
    DEFAULT_TENANT,
    ApiKeyInfo,
    CreatedKey,
    Principal,
    TenantInfo,
    create_key,
    create_tenant,
    expiry_in_days,
    list_keys,
    list_tenants,
    revoke_key,
    rotate_key,
)
from verticals.core.db import session_scope
from verticals.core.errors import Conflict
from verticals.core.serving.deps import require_scope

Admin = Annotated[Principal, Depends(require_scope(ADMIN_SCOPE))]
KeyId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # an INTEGER column (32-bit on PostgreSQL)


class TenantIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, examples=["bank-a"])


class TenantsOut(BaseModel):
    tenants: list[TenantInfo]


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    scopes: list[Annotated[str, Field(min_length=1, max_length=120)]] = Field(
        min_length=1, max_length=50, examples=[["finance:score", "finance:review"]]
    )
    tenant: str = Field(default=DEFAULT_TENANT, min_length=1, max_length=64)
    expires_in_days: float | None = Field(default=None, gt=0, le=3650)


class KeysOut(BaseModel):
    keys: list[ApiKeyInfo]


class RotateIn(BaseModel):
    grace_minutes: float = Field(default=60.0, ge=0, le=60 * 24 * 30)


def build_admin_router() -> APIRouter:
    router = APIRouter(prefix="/v1/admin", tags=["admin"])

    @router.post("/tenants", response_model=TenantInfo, status_code=201)
    def add_tenant(body: TenantIn, admin: Admin) -> TenantInfo:
        with session_scope() as session:
            created = create_tenant(session, body.name)
            record_action(session, admin, domain="core", action="tenant.create", target=body.name)
            return created

    @router.get("/tenants", response_model=TenantsOut)
    def get_tenants(admin: Admin) -> TenantsOut:
        with session_scope() as session:
            return TenantsOut(tenants=list_tenants(session))

    @router.post("/keys", response_model=CreatedKey, status_code=201)
    def add_key(body: KeyIn, admin: Admin) -> CreatedKey:
        """A new key, in this answer only (store it: it cannot be shown again)."""
        with session_scope() as session:
            created = create_key(
                session,
                body.name,
                body.scopes,
                tenant=body.tenant,
                expires_at=expiry_in_days(body.expires_in_days),
            )
            record_action(
                session,
                admin,
                domain="core",
                action="key.create",
                target=str(created.info.id),
                detail={"tenant": body.tenant, "scopes": created.info.scopes},
            )
            return created

    @router.get("/keys", response_model=KeysOut)
    def get_keys(
        admin: Admin, tenant: Annotated[str | None, Query(max_length=64)] = None
    ) -> KeysOut:
        with session_scope() as session:
            return KeysOut(keys=list_keys(session, tenant))

    @router.post("/keys/{key_id}:revoke", response_model=ApiKeyInfo)
    def revoke(key_id: KeyId, admin: Admin) -> ApiKeyInfo:
        """Refused everywhere within a second. Not the key making this request (409): an admin
        locked out by a typo needs the operator's CLI to get back in."""
        if key_id == admin.key_id:
            raise Conflict(
                "this request is signed with that key: revoke it with another admin key",
                {"key_id": key_id},
            )
        with session_scope() as session:
            revoked = revoke_key(session, key_id)
            record_action(session, admin, domain="core", action="key.revoke", target=str(key_id))
            return revoked

    @router.post("/keys/{key_id}:rotate", response_model=CreatedKey, status_code=201)
    def rotate(key_id: KeyId, body: RotateIn, admin: Admin) -> CreatedKey:
        """A twin key (in this answer only); the old one expires after the grace period."""
        with session_scope() as session:
            created = rotate_key(session, key_id, grace=timedelta(minutes=body.grace_minutes))
            record_action(
                session,
                admin,
                domain="core",
                action="key.rotate",
                target=str(key_id),
                detail={"new_key_id": created.info.id},
            )
            return created

    return router
