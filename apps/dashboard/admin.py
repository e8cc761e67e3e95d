"""Users (an admin's page): who can sign in, as what, when they last did, and what they did."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st
from verticals.core.accounts.roles import ROLE_SCOPES
from verticals.core.accounts.users import (
    UserInfo,
    create_user,
    disable_user,
    enable_user,
    list_users,
    reset_password,
)
from verticals.core.audit import recent_actions
from verticals.core.auth import Principal
from verticals.core.db import session_scope
from verticals.core.errors import VerticalsError

ALL_USERS = "everyone"


def _state(user: UserInfo) -> str:
    if user.disabled_at:
        return "disabled"
    return "locked" if user.locked_until else "active"


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "never"


def render_admin(principal: Principal) -> None:
    st.title("Users")
    with session_scope() as session:
        users = list_users(session)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "name": u.name,
                    "role": u.role,
                    "tenant": u.tenant,
                    "sign-in": u.source,
                    "state": _state(u),
                    "last sign-in": _when(u.last_sign_in_at),
                    "failed sign-ins": u.failed_sign_ins,
                }
                for u in users
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    left, right = st.columns(2)
    with left:
        _render_create(principal)
    with right:
        _render_manage(principal, [u.name for u in users])
    _render_actions({u.name: u.id for u in users})


def _render_create(principal: Principal) -> None:
    with st.form("create_user", clear_on_submit=True):
        st.subheader("New user")
        name = st.text_input("Name")
        role = st.selectbox("Role", list(ROLE_SCOPES))
        tenant = st.text_input("Tenant", value="default")
        if st.form_submit_button("Create"):
            try:
                with session_scope() as session:
                    created = create_user(session, name.strip(), role, tenant=tenant, by=principal)
            except VerticalsError as exc:
                st.error(exc.message)
            else:
                st.success(f"Created {created.info.name!r}. Give them this password (shown once):")
                st.code(created.password, language=None)


def _render_manage(principal: Principal, names: list[str]) -> None:
    st.subheader("Manage")
    if not names:
        return
    name = st.selectbox("User", names, key="admin_user")
    disable, enable, reset = st.columns(3)
    try:
        if disable.button("Disable", disabled=name == principal.name, width="stretch"):
            with session_scope() as session:
                disable_user(session, name, by=principal)
            st.toast(f"{name} disabled")
        if enable.button("Enable / unlock", width="stretch"):
            with session_scope() as session:
                enable_user(session, name, by=principal)
            st.toast(f"{name} enabled")
        if reset.button("Reset password", width="stretch"):
            with session_scope() as session:
                password = reset_password(session, name, by=principal)
            st.success(f"New password for {name!r} (shown once):")
            st.code(password, language=None)
    except VerticalsError as exc:
        st.error(exc.message)


def _render_actions(ids: dict[str, int]) -> None:
    st.subheader("Recent actions")
    who = st.selectbox("By", [ALL_USERS, *ids], key="admin_actions_by")
    with session_scope() as session:
        actions = recent_actions(session, user_id=ids.get(who), limit=100)
    if not actions:
        st.info("No actions yet.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "when": _when(a.created_at),
                    "who": a.actor
                    if a.api_key_id is None
                    else f"{a.actor} (API key {a.api_key_id})",
                    "role": a.role or "",
                    "tenant": a.tenant,
                    "domain": a.domain,
                    "action": a.action,
                    "target": a.target or "",
                    "detail": ", ".join(f"{k}={v}" for k, v in a.detail.items()),
                }
                for a in actions
            ]
        ),
        hide_index=True,
        width="stretch",
    )
