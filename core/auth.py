"""API keys: random, shown once, stored as sha256; scopes like ``finance:score`` or ``*``."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from verticals.core.db.base import utcnow
from verticals.core.db.models import ApiKeyRow
from verticals.core.errors import Forbidden, InvalidInput, NotFound, Unauthenticated

KEY_PREFIX = "vk_"
DEFAULT_TENANT = "default"
SCOPE_PATTERN_HELP = "'*', '<domain>:*' or '<domain>:<action>'"
_CACHE_TTL_S = 10.0


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


class ApiKeyInfo(BaseModel):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


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
        if scope != "*" and (scope.count(":") != 1 or not all(scope.split(":"))):
            raise InvalidInput(f"malformed scope {scope!r}", {"expected": SCOPE_PATTERN_HELP})
    return cleaned


def _info(row: ApiKeyRow) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=list(row.scopes),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def create_key(session: Session, name: str, scopes: list[str]) -> CreatedKey:
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKeyRow(name=name, prefix=prefix, key_hash=_hash(key), scopes=_validate_scopes(scopes))
    session.add(row)
    session.flush()
    return CreatedKey(info=_info(row), key=key)


def list_keys(session: Session) -> list[ApiKeyInfo]:
    return [_info(row) for row in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))]


def revoke_key(session: Session, key_id: int) -> ApiKeyInfo:
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise NotFound(f"no API key with id {key_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    _cache.clear()
    return _info(row)


class _PrincipalCache:
    """A short-lived in-process cache so each request does not hit the database for its key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, key_hash: str) -> Principal | None:
        with self._lock:
            entry = self._entries.get(key_hash)
            if entry is None or entry[0] < time.monotonic():
                return None
            return entry[1]

    def put(self, key_hash: str, principal: Principal) -> None:
        with self._lock:
            self._entries[key_hash] = (time.monotonic() + _CACHE_TTL_S, principal)

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
    principal = Principal(key_id=row.id, name=row.name, scopes=list(row.scopes))
    _cache.put(key_hash, principal)
    return principal
