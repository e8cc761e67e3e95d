"""Prometheus gauges of the monitoring state (on the replica that holds the evaluator lease)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Gauge

if TYPE_CHECKING:
    from verticals.core.monitoring.alerts import AlertOut
    from verticals.core.monitoring.service import DriftReport

DRIFT_SCORE = Gauge(
    "verticals_drift_score",
    "Drift statistic of a watched feature over the current window",
    ["domain", "model", "feature", "statistic"],
)
ALERTS_FIRING = Gauge(
    "verticals_alerts_firing",
    "Open (firing or acknowledged) alerts by rule, domain and model",
    ["rule", "domain", "model", "state"],
)


def set_drift_gauges(report: DriftReport) -> None:
    for row in report.features:
        DRIFT_SCORE.labels(report.domain, report.model, row.name, row.statistic).set(row.value)


def set_alert_gauges(open_alerts: list[AlertOut]) -> None:
    ALERTS_FIRING.clear()
    for alert in open_alerts:
        ALERTS_FIRING.labels(alert.rule, alert.domain, alert.model, alert.state).inc()
