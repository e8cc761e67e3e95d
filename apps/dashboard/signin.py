"""The sign-in page (the only page anyone sees before signing in) and the account box."""

from __future__ import annotations

import streamlit as st
from verticals.apps.dashboard.access import SSO_REFUSAL, end_session, remember
from verticals.core.accounts.sessions import sign_in
from verticals.core.accounts.settings import oidc_settings
from verticals.core.auth import Principal
from verticals.core.errors import VerticalsError


def render_sign_in() -> None:
    st.title("verticals")
    st.subheader("Sign in")
    sso = oidc_settings()
    if sso.enabled:
        refusal = st.session_state.get(SSO_REFUSAL)
        if refusal:
            st.error(f"Single sign-on refused: {refusal}")
            if st.button("Sign out of the identity provider"):
                st.session_state.pop(SSO_REFUSAL, None)
                st.logout()
        elif st.button(sso.label, type="primary"):
            st.login()
        st.caption("or with a local account:")
    with st.form("sign_in"):
        name = st.text_input("User name", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        try:
            remember(sign_in(name.strip(), password))
        except VerticalsError as exc:
            st.error(exc.message[:1].upper() + exc.message[1:] + ".")
        else:
            st.rerun()


def render_account(principal: Principal) -> None:
    """The sidebar box: who is signed in, as what, and the sign-out button."""
    with st.sidebar:
        st.caption(f"Signed in as **{principal.name}** · {principal.role} · {principal.tenant}")
        if st.button("Sign out", key="sign_out"):
            end_session()
            st.rerun()
