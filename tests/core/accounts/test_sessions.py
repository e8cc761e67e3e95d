"""Sessions end on expiry, idleness, sign-out and a disabled account; single sign-on claims map
to roles and tenants; refused sign-ins are logged under the account."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from verticals.core.accounts.sessions import (
    identity_from_claims,
    session_principal,
    sign_in,
    sign_in_sso,
    sign_out,
)
from verticals.core.accounts.settings import OidcSettings
from verticals.core.audit import recent_actions
from verticals.core.db import session_scope
from verticals.core.db.base import utcnow
from verticals.core.db.models import UserRow, UserSessionRow
from verticals.core.errors import Forbidden, Unauthenticated

SSO = OidcSettings(server_metadata_url="http://idp/.well-known/openid-configuration", client_id="c")


def _age_session(**columns) -> None:  # noqa: ANN003 - column values
    with session_scope() as session:
        session.execute(update(UserSessionRow).values(**columns))


def test_a_session_ends_when_it_expires_or_idles(make_user):
    user = make_user("viewer")
    token = sign_in(user.name, user.password).token
    assert session_principal(token).user_id == user.principal.user_id
    _age_session(last_seen_at=utcnow() - timedelta(hours=1))  # idle past 30 minutes
    assert session_principal(token) is None
    assert session_principal(token) is None  # and it stays ended

    token = sign_in(user.name, user.password).token
    _age_session(expires_at=utcnow() - timedelta(seconds=1))
    assert session_principal(token) is None


def test_sign_out_ends_the_session_and_is_logged(make_user):
    user = make_user("viewer")
    token = sign_in(user.name, user.password).token
    sign_out(token)
    assert session_principal(token) is None
    with session_scope() as session:
        actions = [a.action for a in recent_actions(session, user_id=user.principal.user_id)]
    assert actions[:2] == ["sign-out", "sign-in"]


def test_refused_sign_ins_are_logged_without_the_password(make_user):
    user = make_user("viewer")
    with pytest.raises(Unauthenticated):
        sign_in(user.name, "hunter2-wrong")
    with session_scope() as session:
        refused = recent_actions(session, user_id=user.principal.user_id)[0]
    assert refused.action == "sign-in.refused"
    assert refused.detail == {"reason": "unauthenticated", "failed_sign_ins": 1}
    assert "hunter2" not in str(refused.model_dump())


def test_a_user_name_never_seen_costs_a_hash_and_says_the_same(db):
    with pytest.raises(Unauthenticated, match="wrong user name or password"):
        sign_in("ghost", "whatever")


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"sub": "1", "email": "a@h.org", "roles": ["clinician"]}, ("a@h.org", "clinician")),
        ({"sub": "2", "preferred_username": "bo", "roles": "viewer"}, ("bo", "viewer")),
        (
            {"sub": "3", "name": "Cy", "realm_access": {"roles": ["offline", "admin"]}},
            ("Cy", "admin"),
        ),
    ],
)
def test_roles_come_from_the_configured_claim(claims, expected):
    settings = SSO
    if "realm_access" in claims:
        settings = SSO.model_copy(update={"role_claim": "realm_access.roles"})
    _, name, role, tenant = identity_from_claims(claims, settings)
    assert (name, role, tenant) == (*expected, "default")


def test_single_sign_on_without_a_known_role_is_refused(db):
    with pytest.raises(Forbidden, match="no verticals role"):
        sign_in_sso({"sub": "x", "email": "x@h.org", "roles": ["superuser"]}, SSO)


def test_single_sign_on_follows_the_provider_but_a_disabled_user_stays_out(db):
    claims = {"iss": "http://idp", "sub": "42", "email": "d@h.org", "roles": ["viewer"]}
    first = sign_in_sso(claims, SSO)
    assert (first.principal.role, first.principal.tenant) == ("viewer", "default")
    promoted = sign_in_sso({**claims, "roles": ["clinician"], "tenant": "st-mary"}, SSO)
    assert promoted.principal.user_id == first.principal.user_id
    assert (promoted.principal.role, promoted.principal.tenant) == ("clinician", "st-mary")
    with session_scope() as session:
        row = session.scalar(select(UserRow).where(UserRow.name == "d@h.org"))
        assert row.source == "oidc" and row.password_hash is None
        row.disabled_at = utcnow()
    with pytest.raises(Forbidden, match="disabled"):
        sign_in_sso(claims, SSO)
    assert session_principal(promoted.token) is None
    with pytest.raises(Unauthenticated):  # no password sign-in for a single sign-on account
        sign_in("d@h.org", "")
