"""Process-wide resources of the dashboard, created once (st.cache_resource)."""

from __future__ import annotations

import streamlit as st
from verticals.core.plugins import PluginRegistry, discover


@st.cache_resource(show_spinner=False)
def plugin_registry() -> PluginRegistry:
    return discover()


@st.cache_resource(show_spinner="Preparing the database and production models…")
def prepared() -> dict[str, str]:
    """Migrations and production models, once per dashboard process."""
    from verticals.core.bootstrap import ensure_production_models, prepare_database

    plugins = plugin_registry()
    prepare_database(plugins)
    return ensure_production_models(plugins)
