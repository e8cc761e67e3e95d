"""Home page: the domains the user may see, their production models and metrics, recent
predictions, health."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from sqlalchemy import text
from verticals.apps.dashboard.state import plugin_registry, prepared
from verticals.core.audit import recent_predictions
from verticals.core.auth import Principal
from verticals.core.db import get_engine, session_scope
from verticals.core.registry import list_versions
from verticals.core.registry.cards import metrics_table


def _database_health() -> tuple[bool, str]:
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return True, get_engine().dialect.name
    except Exception as exc:  # noqa: BLE001 - shown to the operator, not raised
        return False, f"{type(exc).__name__}: {exc}"


def render_home(principal: Principal) -> None:
    plugins = plugin_registry()
    startup = prepared()
    visible = {n: d for n, d in plugins.domains.items() if principal.allows_domain(n)}
    st.title("verticals")
    st.caption("One ML core; a page per domain in the navigation.")

    ok, detail = _database_health()
    cols = st.columns(3)
    cols[0].metric("Domains", len(visible))
    cols[1].metric("Database", "up" if ok else "down", detail, delta_color="off")
    cols[2].metric("Plugin failures", len(plugins.failures))
    for name, error in plugins.failures.items():
        st.error(f"Domain plugin {name!r} failed to load: {error}")

    st.subheader("Domains")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "domain": name,
                    "title": domain.title,
                    "production model": startup.get(name, ""),
                    "api": f"/v1/{name}",
                }
                for name, domain in visible.items()
            ]
        ),
        hide_index=True,
        width="stretch",
    )

    with session_scope() as session:
        versions = [
            v for v in list_versions(session) if v.stage == "production" and v.domain in visible
        ]
        recent = recent_predictions(session, limit=25, domains=visible)

    st.subheader("Production models")
    if versions:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "model": f"{v.domain}/{v.name}",
                        "version": v.version,
                        "registered": f"{v.created_at:%Y-%m-%d %H:%M}",
                        "sha256": v.sha256[:12],
                        "metrics": len(v.metrics),
                    }
                    for v in versions
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        # Each model has its own metrics: one long table for the chosen model, no empty cells.
        refs = {f"{v.domain}/{v.name} {v.version}": v for v in versions}
        chosen = refs[st.selectbox("Metrics of", list(refs), key="home_metrics_of")]
        st.dataframe(pd.DataFrame(metrics_table(chosen.metrics)), hide_index=True)
    else:
        st.info("No production model registered yet.")

    st.subheader("Recent predictions")
    if recent:
        st.dataframe(pd.DataFrame(recent), hide_index=True, width="stretch")
    else:
        st.info("No predictions yet.")
