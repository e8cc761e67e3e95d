"""Operations page (core, not a domain): per watched model its drift per feature with the
thresholds, drift over time, reference vs current histograms of the drifted features, live
performance, the alert list with acknowledge, and webhook deliveries. Needs ``ops:read``;
acknowledging needs ``ops:write``."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from verticals.apps.dashboard.state import plugin_registry
from verticals.core.auth import Principal
from verticals.core.db import session_scope
from verticals.core.errors import VerticalsError
from verticals.core.labeling.shadow import shadow_report_for
from verticals.core.monitoring.alerts import acknowledge, list_alerts, list_deliveries
from verticals.core.monitoring.service import (
    drift_histograms,
    drift_history,
    find_watched,
    report_for,
    watched_models,
)
from verticals.core.monitoring.settings import monitor_settings
from verticals.core.monitoring.sinks import dispatch

READ, WRITE = "ops:read", "ops:write"


def _alerts(principal: Principal) -> None:
    st.subheader("Alerts")
    with session_scope() as session:
        alerts = list_alerts(session, limit=200)
    if not alerts:
        st.caption("No alerts.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "id": a.id,
                    "state": a.state,
                    "rule": a.rule,
                    "model": f"{a.domain}/{a.model}",
                    "summary": a.summary,
                    "started": a.started_at,
                    "acknowledged by": a.acknowledged_by or "",
                    "resolved": a.resolved_at,
                }
                for a in alerts
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    if not principal.allows(WRITE):
        return
    for alert in (a for a in alerts if a.state == "firing"):
        if st.button(f"Acknowledge alert {alert.id}: {alert.summary}", key=f"ack_{alert.id}"):
            try:
                with session_scope() as session:
                    change = acknowledge(session, alert.id, principal.name)
                dispatch([change], monitor_settings())
                st.success(f"Alert {alert.id} acknowledged.")
            except VerticalsError as exc:
                st.error(exc.message)


def _history_chart(domain: str, model: str) -> None:
    with session_scope() as session:
        points = drift_history(session, domain, model)
    if not points:
        return
    frame = pd.DataFrame(points)
    frame["ratio"] = frame["value"] / frame["threshold"]
    frame = frame[frame["statistic"] != "chi2_p"]  # a p-value: not on the ratio scale
    wide = frame.pivot_table(index="created_at", columns="feature", values="ratio", aggfunc="max")
    wide["threshold"] = 1.0
    st.caption("Drift over time: each feature's statistic / its threshold (1 = threshold)")
    st.line_chart(wide)


def _model(domain: str, model: str) -> None:
    plugins = plugin_registry()
    st.subheader(f"{domain} / {model}")
    try:
        report = report_for(plugins, domain, model, with_alerts=False)
    except VerticalsError as exc:
        st.warning(exc.message)
        return
    except Exception as exc:  # noqa: BLE001 - one model's failure must not hide the others
        st.error(f"{domain}/{model}: drift unavailable ({type(exc).__name__}: {exc})")
        return
    window = report.window
    cols = st.columns(3)
    cols[0].metric("Status", report.status)
    cols[1].metric("Window", f"{window.count} / {window.max_count}")
    cols[2].metric("Reference", window.reference_count, report.version, delta_color="off")
    if report.features:
        st.dataframe(
            pd.DataFrame([f.model_dump() for f in report.features]),
            hide_index=True,
            width="stretch",
        )
    _history_chart(domain, model)
    if report.drifted:
        watched = find_watched(plugins, domain, model)
        with session_scope() as session:
            histograms = drift_histograms(session, domain, watched, report.drifted)
        for name, hist in histograms.items():
            edges = hist["edges"]
            centers = [round((a + b) / 2, 4) for a, b in zip(edges, edges[1:], strict=False)]
            st.caption(f"{name}: reference vs current")
            st.bar_chart(
                pd.DataFrame(
                    {"reference": hist["reference"], "current": hist["current"]}, index=centers
                ),
                stack=False,
            )
    if report.performance:
        st.caption("Performance (from labels; estimated from calibrated probabilities)")
        st.json(report.performance, expanded=False)
    _shadow(domain, model)


def _shadow(domain: str, model: str) -> None:
    """One line when a challenger is staged: it against the champion on live traffic."""
    plugins = plugin_registry()
    source = plugins.domains[domain].shadow() if domain in plugins.domains else None
    if source is None or model not in source.models:
        return
    try:
        report = shadow_report_for(plugins, domain, model)
    except VerticalsError:  # no staged challenger: the usual state
        return
    st.caption(report.summary())


def render_operations(principal: Principal) -> None:
    st.title("Operations")
    st.caption("Drift of the served models against their reference profiles, and alerts.")
    _alerts(principal)
    for domain, watched in watched_models(plugin_registry()):
        _model(domain, watched.model)
    st.subheader("Webhook deliveries")
    with session_scope() as session:
        deliveries = list_deliveries(session)
    if deliveries:
        st.dataframe(
            pd.DataFrame([d.model_dump() for d in deliveries]), hide_index=True, width="stretch"
        )
    else:
        st.caption("None yet.")
