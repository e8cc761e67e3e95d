"""Tenants and API keys: random, shown once, stored as sha256; scopes like ``finance:score``,
``*`` or ``admin`` (manages tenants and keys). Every key belongs to one tenant and may expire.

Keys are cached per process for at most :data:`_CACHE_TTL_S` (1 s): a revocation or an expiry
is effective in every worker within a second, and a busy key costs one indexed lookup
(``api_keys.key_hash``) per worker per second.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from verticals.core.db.base import utcnow
from verticals.core.db.models import ApiKeyRow, TenantRow
from verticals.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated

KEY_PREFIX = "vk_"
DEFAULT_TENANT = "default"
ADMIN_SCOPE = "admin"
SCOPE_PATTERN_HELP = "'*', 'admin', '<domain>:*' or '<domain>:<action>'"
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_CACHE_TTL_S = 1.0


class Principal(BaseModel):
    """Who is acting: an API key (``key_id``) or a signed-in dashboard user (``user_id``).

    Scopes read ``'*'``, ``'<domain>:*'``, ``'<domain>:<action>'`` or ``'*:<action>'`` (that
    action in every domain, e.g. a viewer's ``'*:read'``).
    """

    name: str
    scopes: list[str]
    key_id: int | None = None
    user_id: int | None = None
    role: str | None = None
    tenant: str = DEFAULT_TENANT

    def allows(self, scope: str) -> bool:
        domain, _, action = scope.partition(":")
        return any(s in ("*", scope, f"{domain}:*", f"*:{action}") for s in self.scopes)

    def allows_domain(self, domain: str) -> bool:
        return any(s == "*" or s.split(":", 1)[0] in (domain, "*") for s in self.scopes)

    def require(self, scope: str) -> None:
        if not self.allows(scope):
            holder = "this API key" if self.user_id is None else f"the role {self.role!r}"
            raise Forbidden(f"{holder} lacks the scope {scope!r}", {"required": scope})


class TenantInfo(BaseModel):
    id: int
    name: str
    created_at: datetime


class ApiKeyInfo(BaseModel):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    tenant: str
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = None


class CreatedKey(BaseModel):
    info: ApiKeyInfo
    key: str


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _validate_scopes(scopes: list[str]) -> list[str]:
    cleaned = [s.strip() for s in scopes if s.strip()]
    if not cleaned:
        raise InvalidInput("at least one scope is required", {"expected": SCOPE_PATTERN_HELP})
    for scope in cleaned:
        if scope not in ("*", ADMIN_SCOPE) and (scope.count(":") != 1 or not all(scope.split(":"))):
            raise InvalidInput(f"malformed scope {scope!r}", {"expected": SCOPE_PATTERN_HELP})
    return cleaned


def _utc(value: datetime) -> datetime:
    """An aware UTC datetime (SQLite hands a timezone-aware column back naive)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _info(row: ApiKeyRow) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=list(row.scopes),
        tenant=row.tenant,
        created_at=_utc(row.created_at),
        revoked_at=None if row.revoked_at is None else _utc(row.revoked_at),
        expires_at=None if row.expires_at is None else _utc(row.expires_at),
    )


# ------------------------------------------------------------------------------- tenants
def _tenant_info(row: TenantRow) -> TenantInfo:
    return TenantInfo(id=row.id, name=row.name, created_at=_utc(row.created_at))


def create_tenant(session: Session, name: str) -> TenantInfo:
    """A new tenant; names are lower-case letters, digits, '.', '_' or '-' (at most 64)."""
    if not TENANT_PATTERN.match(name):
        raise InvalidInput(
            f"malformed tenant name {name!r}",
            {"field": "name", "expected": TENANT_PATTERN.pattern},
        )
    if session.scalar(select(TenantRow).where(TenantRow.name == name)) is not None:
        raise Conflict(f"tenant {name!r} already exists", {"field": "name"})
    row = TenantRow(name=name, created_at=utcnow())
    session.add(row)
    session.flush()
    return _tenant_info(row)


def list_tenants(session: Session) -> list[TenantInfo]:
    return [_tenant_info(r) for r in session.scalars(select(TenantRow).order_by(TenantRow.id))]


def _existing_tenant(session: Session, name: str) -> str:
    """``name`` if that tenant exists; the default tenant is created on first use (a database
    made without migrations has no rows yet)."""
    if session.scalar(select(TenantRow.id).where(TenantRow.name == name)) is not None:
        return name
    if name == DEFAULT_TENANT:
        session.add(TenantRow(name=name, created_at=utcnow()))
        session.flush()
        return name
    raise NotFound(
        f"no tenant {name!r} (create it with `verticals tenants create {name}`)",
        {"field": "tenant"},
    )


# ---------------------------------------------------------------------------------- keys
def create_key(
    session: Session,
    name: str,
    scopes: list[str],
    *,
    tenant: str = DEFAULT_TENANT,
    expires_at: datetime | None = None,
) -> CreatedKey:
    """A new key of ``tenant`` (which must exist), valid until ``expires_at`` when given."""
    if expires_at is not None and expires_at.tzinfo is None:
        raise InvalidInput("expires_at needs a timezone", {"field": "expires_at"})
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKeyRow(
        name=name,
        prefix=prefix,
        key_hash=_hash(key),
        scopes=_validate_scopes(scopes),
        tenant=_existing_tenant(session, tenant),
        created_at=utcnow(),
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return CreatedKey(info=_info(row), key=key)


def expiry_in_days(days: float | None) -> datetime | None:
    if days is None:
        return None
    if days <= 0:
        raise InvalidInput("a key's lifetime must be positive", {"field": "expires_in_days"})
    return utcnow() + timedelta(days=days)


def list_keys(session: Session, tenant: str | None = None) -> list[ApiKeyInfo]:
    query = select(ApiKeyRow).order_by(ApiKeyRow.id)
    if tenant is not None:
        query = query.where(ApiKeyRow.tenant == tenant)
    return [_info(row) for row in session.scalars(query)]


def _key_row(session: Session, key_id: int) -> ApiKeyRow:
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise NotFound(f"no API key with id {key_id}")
    return row


def revoke_key(session: Session, key_id: int) -> ApiKeyInfo:
    """Refused from now on: at once in this process, within :data:`_CACHE_TTL_S` elsewhere."""
    row = _key_row(session, key_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    _cache.clear()
    return _info(row)


def rotate_key(session: Session, key_id: int, *, grace: timedelta) -> CreatedKey:
    """A new key with the old one's name, scopes, tenant and lifetime; the old one expires
    after ``grace`` (or keeps its earlier expiry), so clients can switch without downtime."""
    if grace < timedelta(0):
        raise InvalidInput("the grace period cannot be negative", {"field": "grace"})
    old = _key_row(session, key_id)
    now = utcnow()
    if old.revoked_at is not None:
        raise Conflict(f"API key {key_id} is revoked: create a new one instead")
    if old.expires_at is not None and old.expires_at <= now:
        raise Conflict(f"API key {key_id} has expired: create a new one instead")
    born = old.created_at if old.created_at.tzinfo else old.created_at.replace(tzinfo=UTC)
    lifetime = None if old.expires_at is None else old.expires_at - born
    created = create_key(
        session,
        old.name,
        list(old.scopes),
        tenant=old.tenant,
        expires_at=None if lifetime is None else now + lifetime,
    )
    ends = now + grace
    old.expires_at = ends if old.expires_at is None else min(old.expires_at, ends)
    _cache.clear()
    return created


class _PrincipalCache:
    """A short-lived in-process cache so each request does not hit the database for its key.

    An entry lives :data:`_CACHE_TTL_S`; then the next request re-reads the key's row, which is
    how a revocation made by another process reaches this one. A key's expiry is checked on
    every hit, so it takes effect on time whatever the cache holds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, float | None, Principal]] = {}

    def get(self, key_hash: str) -> Principal | None:
        with self._lock:
            entry = self._entries.get(key_hash)
        if entry is None:
            return None
        fresh_until, expires, principal = entry
        if fresh_until < time.monotonic() or (expires is not None and expires <= time.time()):
            return None
        return principal

    def put(self, key_hash: str, principal: Principal, expires_at: datetime | None) -> None:
        expires = None if expires_at is None else expires_at.timestamp()
        with self._lock:
            self._entries[key_hash] = (time.monotonic() + _CACHE_TTL_S, expires, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_cache = _PrincipalCache()


def clear_key_cache() -> None:
    _cache.clear()


def _presented_hash(key: str | None) -> str:
    if not key:
        raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key'")
    return _hash(key)


def cached_principal(key: str | None) -> Principal | None:
    """The principal of a recently seen key, without touching the database (None: look it up)."""
    return _cache.get(_presented_hash(key))


def authenticate(session: Session, key: str | None) -> Principal:
    key_hash = _presented_hash(key)
    cached = _cache.get(key_hash)
    if cached is not None:
        return cached
    row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == key_hash))
    if row is None or row.revoked_at is not None:
        raise Unauthenticated("unknown or revoked API key")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise Unauthenticated(
            f"API key expired at {row.expires_at.isoformat()}",
            {"expired_at": row.expires_at.isoformat()},
        )
    principal = Principal(key_id=row.id, name=row.name, scopes=list(row.scopes), tenant=row.tenant)
    _cache.put(key_hash, principal, row.expires_at)
    return principal
