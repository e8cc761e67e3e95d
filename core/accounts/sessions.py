"""Dashboard sign-in: passwords with lockout, single sign-on identities, and sessions that end
on sign-out, expiry, idleness, or when the user is disabled.

A session is a random token held by the browser tab's Streamlit session and stored here as
sha256; each page render looks it up, so a disabled user is out at their next click.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from verticals.core.accounts.passwords import hash_password, needs_rehash, verify_password
from verticals.core.accounts.roles import ROLE_SCOPES
from verticals.core.accounts.settings import OidcSettings, account_settings
from verticals.core.accounts.users import find_user, principal_of
from verticals.core.audit import record_action
from verticals.core.auth import DEFAULT_TENANT, Principal
from verticals.core.db.base import utcnow
from verticals.core.db.models import UserRow, UserSessionRow
from verticals.core.db.session import session_scope
from verticals.core.errors import Forbidden, Unauthenticated

# Seconds between writes of a session's last_seen_at (a click per second need not write).
_TOUCH_EVERY = timedelta(seconds=30)


class SignedIn(BaseModel):
    token: str
    principal: Principal


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _open_session(session: Session, row: UserRow) -> SignedIn:
    now = utcnow()
    token = secrets.token_urlsafe(32)
    session.add(
        UserSessionRow(
            user_id=row.id,
            token_hash=_hash(token),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=account_settings().session_hours),
        )
    )
    row.last_sign_in_at = now
    row.failed_sign_ins = 0
    row.locked_until = None
    principal = principal_of(row)
    record_action(session, principal, domain="core", action="sign-in", detail={"via": row.source})
    return SignedIn(token=token, principal=principal)


def _refusal(
    row: UserRow | None, password: str, now: datetime
) -> Unauthenticated | Forbidden | None:
    """Why a sign-in is refused, counting a wrong password against the account."""
    settings = account_settings()
    if row is not None and row.locked_until is not None and row.locked_until > now:
        minutes = math.ceil((row.locked_until - now).total_seconds() / 60)
        return Forbidden(
            f"too many failed sign-ins: this account is locked for {minutes} more minute(s)",
            code="account_locked",
        )
    if not verify_password(row.password_hash if row is not None else None, password):
        if row is not None:
            row.failed_sign_ins += 1
            if row.failed_sign_ins >= settings.lockout_failures:
                row.locked_until = now + timedelta(minutes=settings.lockout_minutes)
        return Unauthenticated("wrong user name or password")
    assert row is not None
    if row.disabled_at is not None:
        return Forbidden("this account is disabled: ask an administrator", code="account_disabled")
    return None


def sign_in(name: str, password: str) -> SignedIn:
    """Check a local user's password (argon2) and open a session.

    Raises Unauthenticated (wrong name or password, counted), Forbidden (locked or disabled).
    The failure count is committed before the error is raised.
    """
    now = utcnow()
    with session_scope() as session:
        row = find_user(session, name)
        if row is not None and row.source != "local":
            row = None  # single sign-on users have no password here
        refusal = _refusal(row, password, now)
        if refusal is None:
            assert row is not None and row.password_hash is not None
            if needs_rehash(row.password_hash):
                row.password_hash = hash_password(password)
            return _open_session(session, row)
        if row is not None:
            record_action(
                session,
                principal_of(row),
                domain="core",
                action="sign-in.refused",
                detail={"reason": refusal.code, "failed_sign_ins": row.failed_sign_ins},
            )
    raise refusal


def _claim(claims: Mapping[str, Any], name: str) -> Any:
    value = claims.get(name)
    if value is None and "." in name:  # nested claims, e.g. "realm_access.roles"
        node: Any = claims
        for part in name.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        value = node
    return value


def identity_from_claims(
    claims: Mapping[str, Any], settings: OidcSettings
) -> tuple[str, str, str, str]:
    """(subject, name, role, tenant) of an ID token's claims; Forbidden without a known role."""
    subject = f"{claims.get('iss', '')}|{claims.get('sub', '')}"
    if not claims.get("sub"):
        raise Unauthenticated("the identity provider returned no subject ('sub')")
    name = str(
        claims.get("preferred_username")
        or claims.get("email")
        or claims.get("name")
        or claims["sub"]
    )[:100]
    offered = _claim(claims, settings.role_claim)
    offered = [offered] if isinstance(offered, str) else list(offered or [])
    roles = [r for r in offered if r in ROLE_SCOPES]
    if not roles:
        raise Forbidden(
            f"your identity provider gave no verticals role in the claim {settings.role_claim!r}",
            {"allowed": sorted(ROLE_SCOPES)},
            code="no_role",
        )
    tenant = str(_claim(claims, settings.tenant_claim) or DEFAULT_TENANT)
    return subject, name, roles[0], tenant


def sign_in_sso(claims: Mapping[str, Any], settings: OidcSettings) -> SignedIn:
    """Open a session for an identity the provider vouched for. The user row is created on
    first sign-in and its role and tenant follow the provider's claims; a disabled user stays
    out whatever the provider says."""
    subject, name, role, tenant = identity_from_claims(claims, settings)
    with session_scope() as session:
        row = session.scalar(select(UserRow).where(UserRow.external_subject == subject))
        if row is None:
            if find_user(session, name) is not None:
                raise Forbidden(
                    f"a local account is already named {name!r}: ask an administrator",
                    code="name_taken",
                )
            row = UserRow(
                name=name,
                role=role,
                tenant=tenant,
                source="oidc",
                external_subject=subject,
                failed_sign_ins=0,
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
        row.role, row.tenant = role, tenant
        if row.disabled_at is not None:
            raise Forbidden(
                "this account is disabled: ask an administrator", code="account_disabled"
            )
        return _open_session(session, row)


def session_principal(token: str | None) -> Principal | None:
    """The user behind a dashboard session token; None once it has ended for any reason."""
    if not token:
        return None
    now = utcnow()
    idle = timedelta(minutes=account_settings().idle_minutes)
    with session_scope() as session:
        found = session.execute(
            select(UserSessionRow, UserRow)
            .join(UserRow, UserRow.id == UserSessionRow.user_id)
            .where(UserSessionRow.token_hash == _hash(token))
        ).first()
        if found is None:
            return None
        user_session, user = found
        if (
            user_session.ended_at is not None
            or user_session.expires_at <= now
            or user_session.last_seen_at + idle <= now
            or user.disabled_at is not None
        ):
            if user_session.ended_at is None:
                user_session.ended_at = now
            return None
        if now - user_session.last_seen_at >= _TOUCH_EVERY:
            user_session.last_seen_at = now
        return principal_of(user)


def sign_out(token: str | None) -> None:
    if not token:
        return
    with session_scope() as session:
        user_session = session.scalar(
            select(UserSessionRow).where(UserSessionRow.token_hash == _hash(token))
        )
        if user_session is not None and user_session.ended_at is None:
            user_session.ended_at = utcnow()
            user = session.get(UserRow, user_session.user_id)
            if user is not None:
                record_action(session, principal_of(user), domain="core", action="sign-out")


def end_sessions_of(session: Session, user_id: int) -> None:
    session.execute(
        update(UserSessionRow)
        .where(UserSessionRow.user_id == user_id, UserSessionRow.ended_at.is_(None))
        .values(ended_at=utcnow())
    )
