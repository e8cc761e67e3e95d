"""Local accounts: create, list, disable, enable, reset a password. Every change is logged as an
action of whoever made it (an admin in the dashboard, or the operator at the CLI)."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from verticals.core.accounts.passwords import generate_password, hash_password
from verticals.core.accounts.roles import checked_role, scopes_for
from verticals.core.audit import record_action
from verticals.core.auth import DEFAULT_TENANT, Principal
from verticals.core.db.base import utcnow
from verticals.core.db.models import UserRow
from verticals.core.errors import Conflict, InvalidInput, NotFound

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+\-]{0,99}$")
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
# Who acts at the command line: the machine's operator, outside any dashboard session.
OPERATOR = Principal(name="cli operator", scopes=["*"], role="operator")


class UserInfo(BaseModel):
    id: int
    name: str
    role: str
    tenant: str
    source: str
    disabled_at: datetime | None
    locked_until: datetime | None
    failed_sign_ins: int
    last_sign_in_at: datetime | None
    created_at: datetime


class CreatedUser(BaseModel):
    info: UserInfo
    password: str


def principal_of(row: UserRow) -> Principal:
    return Principal(
        name=row.name,
        scopes=scopes_for(row.role),
        user_id=row.id,
        role=row.role,
        tenant=row.tenant,
    )


def user_info(row: UserRow) -> UserInfo:
    return UserInfo.model_validate(row, from_attributes=True)


def _checked_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InvalidInput(
            f"user name {name!r} is not allowed",
            {"field": "name", "expected": "1-100 of letters, digits and . _ @ + -"},
        )
    return name


def _checked_tenant(tenant: str) -> str:
    if not TENANT_PATTERN.match(tenant):
        raise InvalidInput(
            f"tenant {tenant!r} is not allowed",
            {"field": "tenant", "expected": "1-64 of lowercase letters, digits, _ and -"},
        )
    return tenant


def find_user(session: Session, name: str) -> UserRow | None:
    return session.scalar(select(UserRow).where(UserRow.name == name))


def _existing(session: Session, name: str) -> UserRow:
    row = find_user(session, name)
    if row is None:
        raise NotFound(f"no user named {name!r}", {"field": "name"})
    return row


def create_user(
    session: Session,
    name: str,
    role: str,
    *,
    tenant: str = DEFAULT_TENANT,
    by: Principal = OPERATOR,
) -> CreatedUser:
    """A local user with a generated password (returned once, stored only as its argon2 hash)."""
    name, role, tenant = _checked_name(name), checked_role(role), _checked_tenant(tenant)
    if find_user(session, name) is not None:
        raise Conflict(f"a user named {name!r} already exists", {"field": "name"})
    password = generate_password()
    row = UserRow(
        name=name,
        role=role,
        tenant=tenant,
        source="local",
        password_hash=hash_password(password),
        failed_sign_ins=0,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    record_action(
        session,
        by,
        domain="core",
        action="user.create",
        target=name,
        detail={"role": role, "tenant": tenant},
    )
    return CreatedUser(info=user_info(row), password=password)


def list_users(session: Session) -> list[UserInfo]:
    return [user_info(row) for row in session.scalars(select(UserRow).order_by(UserRow.id))]


def disable_user(session: Session, name: str, *, by: Principal = OPERATOR) -> UserInfo:
    """Disable an account; its open dashboard sessions end at their next click."""
    row = _existing(session, name)
    if row.disabled_at is None:
        row.disabled_at = utcnow()
        record_action(session, by, domain="core", action="user.disable", target=name)
    return user_info(row)


def enable_user(session: Session, name: str, *, by: Principal = OPERATOR) -> UserInfo:
    """Re-enable an account and lift a lockout."""
    row = _existing(session, name)
    row.disabled_at = None
    row.locked_until = None
    row.failed_sign_ins = 0
    record_action(session, by, domain="core", action="user.enable", target=name)
    return user_info(row)


def reset_password(session: Session, name: str, *, by: Principal = OPERATOR) -> str:
    """A new generated password (returned once); lifts a lockout, ends open sessions."""
    from verticals.core.accounts.sessions import end_sessions_of

    row = _existing(session, name)
    if row.source != "local":
        raise InvalidInput(
            f"{name!r} signs in through single sign-on and has no password here",
            {"field": "name"},
        )
    password = generate_password()
    row.password_hash = hash_password(password)
    row.failed_sign_ins = 0
    row.locked_until = None
    end_sessions_of(session, row.id)
    record_action(session, by, domain="core", action="user.reset-password", target=name)
    return password
