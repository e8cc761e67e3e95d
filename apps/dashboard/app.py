"""Streamlit entry point: ``streamlit run apps/dashboard/app.py`` (``verticals dashboard`` does).

Thin: nobody signed in sees only the sign-in page, on any URL. A signed-in user sees the home
page, one page per domain their role allows (from its plugin's ``render_page``, under a one-line
banner of its models' open alerts), Operations for roles with ``ops:read``, and, for an admin,
the users page; each page checks the session and the role again when it renders.
"""

from __future__ import annotations

import streamlit as st
from verticals.apps.dashboard.access import guarded, signed_in
from verticals.apps.dashboard.admin import render_admin
from verticals.apps.dashboard.banner import with_health_banner
from verticals.apps.dashboard.home import render_home
from verticals.apps.dashboard.operations import READ as OPS_READ
from verticals.apps.dashboard.operations import render_operations
from verticals.apps.dashboard.signin import render_account, render_sign_in
from verticals.apps.dashboard.state import plugin_registry, prepared
from verticals.core.accounts.roles import USER_ADMIN_SCOPE


def main() -> None:
    st.set_page_config(page_title="verticals", layout="wide")
    plugins = plugin_registry()
    prepared()
    principal = signed_in()
    if principal is None:
        sign_in = st.Page(render_sign_in, title="Sign in", url_path="sign-in", default=True)
        st.navigation([sign_in], position="hidden").run()
        return
    render_account(principal)
    pages = [
        st.Page(
            guarded(principal, lambda p: True, render_home),
            title="Home",
            url_path="home",
            default=True,
        )
    ]
    for name, domain in plugins.domains.items():
        if principal.allows_domain(name):
            allows = lambda p, name=name: p.allows_domain(name)  # noqa: E731
            pages.append(
                st.Page(
                    guarded(principal, allows, with_health_banner(domain)),
                    title=domain.title,
                    url_path=name,
                )
            )
    if principal.allows(OPS_READ):
        ops = guarded(principal, lambda p: p.allows(OPS_READ), render_operations)
        pages.append(st.Page(ops, title="Operations", url_path="operations"))
    if principal.allows(USER_ADMIN_SCOPE):
        admin = guarded(principal, lambda p: p.allows(USER_ADMIN_SCOPE), render_admin)
        pages.append(st.Page(admin, title="Users", url_path="users"))
    st.navigation(pages).run()


main()
