"""Streamlit entry point: ``streamlit run apps/dashboard/app.py`` (``verticals dashboard`` does).

Thin: the home page comes from :mod:`verticals.apps.dashboard.home`, and one page per domain
from its plugin's ``render_page``.
"""

from __future__ import annotations

import streamlit as st
from verticals.apps.dashboard.home import render_home
from verticals.apps.dashboard.state import plugin_registry, prepared


def main() -> None:
    st.set_page_config(page_title="verticals", layout="wide")
    plugins = plugin_registry()
    prepared()
    pages = [st.Page(render_home, title="Home", url_path="home", default=True)]
    for name, domain in plugins.domains.items():
        pages.append(st.Page(domain.render_page, title=domain.title, url_path=name))
    st.navigation(pages).run()


main()
