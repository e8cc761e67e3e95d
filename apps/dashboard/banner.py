"""The one-line health banner above each domain's page: its models' open alerts, from core's
monitoring, so a clinician or analyst knows when to doubt what the page shows."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from verticals.core.auth import Principal
from verticals.core.db import session_scope
from verticals.core.monitoring.alerts import list_alerts
from verticals.core.plugins import Domain

SHOWN = 3  # alerts named in the line; the Operations page lists them all


def with_health_banner(domain: Domain) -> Callable[[Principal], None]:
    def render(viewer: Principal) -> None:
        render_banner(domain.name)
        domain.render_page(viewer)

    return render


def render_banner(domain: str) -> None:
    with session_scope() as session:
        alerts = list_alerts(session, state="open", domain=domain, limit=50)
    if not alerts:
        st.caption("Models: no open alerts.")
        return
    named = "; ".join(alert.summary for alert in alerts[:SHOWN])
    more = f" (+{len(alerts) - SHOWN} more)" if len(alerts) > SHOWN else ""
    st.warning(f"{len(alerts)} open model alert(s): {named}{more}. Details on Operations.")
