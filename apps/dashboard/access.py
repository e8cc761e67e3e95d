"""Who is signed in to this browser session, and the checks every page makes on render.

The session token lives in Streamlit's per-tab session state and is looked up in the database on
every run, so sign-out, expiry, idleness and a disabled account take effect at the next click.
With single sign-on configured, an identity from ``st.user`` opens the same kind of session.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from verticals.core.accounts.sessions import (
    SignedIn,
    session_principal,
    sign_in_sso,
    sign_out,
)
from verticals.core.accounts.settings import oidc_settings
from verticals.core.auth import Principal
from verticals.core.errors import VerticalsError

TOKEN = "verticals_session_token"
SSO_REFUSAL = "verticals_sso_refusal"


def sso_identity() -> dict | None:
    """The provider's claims when single sign-on is on and the browser holds its cookie."""
    if not oidc_settings().enabled or not st.user.is_logged_in:
        return None
    return st.user.to_dict()


def remember(signed_in: SignedIn) -> None:
    st.session_state[TOKEN] = signed_in.token


def signed_in() -> Principal | None:
    """The signed-in user, or None (the caller then shows only the sign-in page)."""
    principal = session_principal(st.session_state.get(TOKEN))
    if principal is not None:
        return principal
    st.session_state.pop(TOKEN, None)
    claims = sso_identity()
    if claims is None or st.session_state.get(SSO_REFUSAL):
        return None
    try:
        signed = sign_in_sso(claims, oidc_settings())
    except VerticalsError as exc:
        st.session_state[SSO_REFUSAL] = exc.message
        return None
    remember(signed)
    return signed.principal


def end_session() -> None:
    sign_out(st.session_state.pop(TOKEN, None))
    st.session_state.pop(SSO_REFUSAL, None)
    if oidc_settings().enabled and st.user.is_logged_in:
        st.logout()


def guarded(
    principal: Principal, allows: Callable[[Principal], bool], render: Callable[[Principal], None]
) -> Callable[[], None]:
    """A page callable that checks the role again when it renders, so a page asked for by a
    URL typed by hand (or left over from another user's run) never reaches ``render``.
    ``principal`` is this run's signed-in user, looked up once per run by :func:`signed_in`."""

    def page() -> None:
        if not allows(principal):
            st.error("You are not allowed to see this page.")
            st.stop()
        render(principal)

    page.__name__ = getattr(render, "__name__", "page")
    return page
