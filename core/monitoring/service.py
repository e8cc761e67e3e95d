"""Drift reports and one evaluation pass over every watched model (no HTTP, no Streamlit).

The current window is read from rows the domain already stores, by the evaluator or on demand
(API, CLI, dashboard), never on the request path of a prediction.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime
from typing import Any

import numpy as np
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from verticals.core.db.base import utcnow
from verticals.core.db.models import PredictionRecordRow
from verticals.core.db.session import session_scope
from verticals.core.errors import ModelUnavailable, NotFound
from verticals.core.monitoring import traffic
from verticals.core.monitoring.alerts import AlertOut, Change, Signal, apply_signals, list_alerts
from verticals.core.monitoring.drift import FeatureDrift, compare, drifted_features
from verticals.core.monitoring.performance import performance_of
from verticals.core.monitoring.profile import (
    REFERENCE_KIND,
    ReferenceProfile,
    build_profile,
    load_reference,
    store_reference,
)
from verticals.core.monitoring.settings import MonitorSettings
from verticals.core.monitoring.spec import WatchedModel, Window
from verticals.core.monitoring.tables import DriftPointRow
from verticals.core.plugins import PluginRegistry
from verticals.core.registry.derived import derived_artifact
from verticals.core.registry.store import ModelVersion, production_version

log = logging.getLogger("verticals.monitoring")


class WindowInfo(BaseModel):
    count: int
    start: datetime | None
    end: datetime | None
    max_count: int
    max_age_s: float | None
    min_count: int
    reference_count: int
    reference_version: str


class DriftReport(BaseModel):
    domain: str
    model: str
    version: str
    status: str  # ok | drift | insufficient
    window: WindowInfo
    features: list[FeatureDrift]
    drifted: list[str]
    performance: dict[str, Any]
    alerts: list[AlertOut] = []


def watched_models(plugins: PluginRegistry) -> list[tuple[str, WatchedModel]]:
    found: list[tuple[str, WatchedModel]] = []
    for name, domain in plugins.domains.items():
        try:
            spec = domain.monitoring()
        except Exception:  # a plugin's declaration must not stop the others being watched
            log.exception("domain %r: monitoring() failed", name)
            continue
        if spec is not None:
            found += [(name, watched) for watched in spec.models]
    return found


def find_watched(plugins: PluginRegistry, domain: str, model: str | None) -> WatchedModel:
    spec = plugins.get(domain).monitoring()
    if spec is None or not spec.models:
        raise NotFound(f"domain {domain!r} declares nothing to monitor", {"domain": domain})
    return spec.get(model) if model is not None else spec.models[0]


def ensure_reference(
    session: Session, domain: str, watched: WatchedModel
) -> tuple[ModelVersion, ReferenceProfile]:
    """The production version and its verified reference profile, built and registered from
    the domain's reference data the first time a version is watched."""
    version = production_version(session, domain, watched.model)
    if version is None:
        raise ModelUnavailable(f"no production version of {domain}/{watched.model}")
    profile = load_reference(session, version)
    if profile is None:
        profile = build_profile(
            watched.reference(),
            watched.features,
            domain=domain,
            model=watched.model,
            version=version.version,
        )
        store_reference(session, version, profile)
        profile = load_reference(session, version)  # what is used is what was registered
        assert profile is not None
    return version, profile


def prepare_reference(domain: str, watched: WatchedModel) -> None:
    """Build and register the production version's reference profile if it has none, with no
    transaction open while the domain's reference data is computed (medical runs ~2,000
    images through its classifier: 18 s on the shared machine). On SQLite every transaction
    holds the write lock from its start (BEGIN IMMEDIATE), so building inside one stalled every
    scoring request for that long (seen in `verticals bench finance` with monitoring on)."""
    with session_scope() as session:
        version = production_version(session, domain, watched.model)
        if version is None or derived_artifact(session, version, REFERENCE_KIND) is not None:
            return
        name = version.version
    profile = build_profile(
        watched.reference(), watched.features, domain=domain, model=watched.model, version=name
    )
    with session_scope() as session:
        version = production_version(session, domain, watched.model)
        if version is None or version.version != name:
            return  # promoted meanwhile: the next pass builds the new version's
        if derived_artifact(session, version, REFERENCE_KIND) is None:  # else a replica won
            store_reference(session, version, profile)


def _reference_count(profile: ReferenceProfile) -> int:
    return min((s.count for s in profile.features.values()), default=0)


def drift_report(session: Session, domain: str, watched: WatchedModel) -> DriftReport:
    version, profile = ensure_reference(session, domain, watched)
    window: Window = watched.current(session, watched.window)
    info = WindowInfo(
        count=window.count,
        start=window.start,
        end=window.end,
        max_count=watched.window.max_count,
        max_age_s=watched.window.max_age_s,
        min_count=watched.window.min_count,
        reference_count=_reference_count(profile),
        reference_version=profile.version,
    )
    performance = performance_of(session, watched)
    if performance and watched.baseline:
        performance["baseline"] = {
            m: version.metrics[m] for m in watched.baseline if m in version.metrics
        }
    if window.count < watched.window.min_count:
        return DriftReport(
            domain=domain,
            model=watched.model,
            version=version.version,
            status="insufficient",
            window=info,
            features=[],
            drifted=[],
            performance=performance,
        )
    rows = compare(profile, window, watched)
    drifted = drifted_features(rows)
    return DriftReport(
        domain=domain,
        model=watched.model,
        version=version.version,
        status="drift" if drifted else "ok",
        window=info,
        features=rows,
        drifted=drifted,
        performance=performance,
    )


def report_for(
    plugins: PluginRegistry, domain: str, model: str | None = None, *, with_alerts: bool = True
) -> DriftReport:
    watched = find_watched(plugins, domain, model)
    prepare_reference(domain, watched)
    with session_scope() as session:
        report = drift_report(session, domain, watched)
        if with_alerts:
            report.alerts = list_alerts(session, state="open", domain=domain, model=watched.model)
    return report


def drift_signal(report: DriftReport) -> Signal | None:
    if report.status == "insufficient" or not report.features:
        return None
    worst = max(report.features, key=lambda row: row.severity)
    names = ", ".join(report.drifted) or "none"
    return Signal(
        rule="drift",
        domain=report.domain,
        model=report.model,
        ratio=worst.severity,
        value=worst.value,
        summary=f"drift in {report.domain}/{report.model}: {names}",
        detail={
            "features": report.drifted,
            "worst": worst.model_dump(),
            "window": report.window.model_dump(mode="json"),
        },
    )


def performance_signals(report: DriftReport, settings: MonitorSettings) -> list[Signal]:
    """Performance drop: a labelled metric of the window below ``(1 - performance_drop)`` of
    the model's baseline, once enough labelled positives are in."""
    found = report.performance.get("from_labels") or {}
    if found.get("positives", 0) < settings.min_labelled_positives:
        return []
    signals: list[Signal] = []
    for metric, baseline in report.performance.get("baseline", {}).items():
        value = found.get(metric)
        if value is None:
            continue
        floor = baseline * (1.0 - settings.performance_drop)
        signals.append(
            Signal(
                rule=f"performance_{metric}"[:64],
                domain=report.domain,
                model=report.model,
                ratio=floor / max(float(value), 1e-9),
                value=float(value),
                summary=(
                    f"{report.domain}/{report.model}: {metric} {value:.3f} on "
                    f"{found['labelled']} labelled (baseline {baseline:.3f})"
                ),
                detail={"metric": metric, "baseline": baseline, "labelled": found},
            )
        )
    return signals


def record_signals(session: Session, domain: str, settings: MonitorSettings) -> list[Signal]:
    """Latency rule over the domain's newest prediction records."""
    rows = session.execute(
        select(PredictionRecordRow.latency_ms)
        .where(PredictionRecordRow.domain == domain)
        .order_by(PredictionRecordRow.id.desc())
        .limit(settings.recent_records)
    ).all()
    if len(rows) < 20:
        return []
    p95 = float(np.percentile(np.array([r[0] for r in rows], dtype=np.float64), 95))
    return [
        Signal(
            rule="latency",
            domain=domain,
            model="*",
            ratio=p95 / settings.latency_p95_ms,
            value=p95,
            summary=f"{domain}: p95 latency {p95:.1f} ms (limit {settings.latency_p95_ms:g})",
            detail={"p95_ms": p95, "records": len(rows)},
        )
    ]


def traffic_signals(
    session: Session, domains: Collection[str], settings: MonitorSettings, now: datetime
) -> list[Signal]:
    """Error rate and load shedding: the share of a domain's requests that failed (5xx) and
    that were shed (503 + Retry-After) over the last ``traffic_window_s``, from every
    replica's ``monitor_traffic`` rows. Neither kind of answer leaves a prediction record."""
    window = settings.traffic_window_s
    signals: list[Signal] = []
    for domain, found in sorted(traffic.totals(session, window, now).items()):
        if domain not in domains or found.requests < settings.traffic_min_requests:
            continue
        errors, shed = found.errors / found.requests, found.shed / found.requests
        detail = {**found._asdict(), "window_s": window}
        signals += [
            Signal(
                rule="error_rate",
                domain=domain,
                model="*",
                ratio=errors / settings.error_rate,
                value=errors,
                summary=(
                    f"{domain}: {errors:.1%} of {found.requests} requests failed (5xx) in "
                    f"the last {window:g} s (limit {settings.error_rate:.1%})"
                ),
                detail=detail,
            ),
            Signal(
                rule="load_shedding",
                domain=domain,
                model="*",
                ratio=shed / settings.shed_rate,
                value=shed,
                summary=(
                    f"{domain}: {shed:.1%} of {found.requests} requests shed (503) in the "
                    f"last {window:g} s (limit {settings.shed_rate:.1%})"
                ),
                detail=detail,
            ),
        ]
    return signals


def evaluate_once(
    plugins: PluginRegistry, settings: MonitorSettings, *, now: datetime | None = None
) -> tuple[list[DriftReport], list[Change]]:
    """One pass: every watched model's drift (points stored, gauges set), the latency rule of
    every watched domain, error rate and load shedding of every domain, and the alert
    transitions they cause."""
    from verticals.core.monitoring.gauges import set_alert_gauges, set_drift_gauges

    now = now or utcnow()
    reports: list[DriftReport] = []
    signals: list[Signal] = []
    domains: list[str] = []
    for domain, watched in watched_models(plugins):
        try:
            prepare_reference(domain, watched)
            with session_scope() as session:
                report = drift_report(session, domain, watched)
                for row in report.features:
                    session.add(
                        DriftPointRow(
                            domain=domain,
                            model=watched.model,
                            feature=row.name,
                            statistic=row.statistic,
                            value=row.value,
                            threshold=row.threshold,
                            window_count=report.window.count,
                            created_at=now,
                        )
                    )
        except Exception:  # one model's failure must not blind the others
            log.exception("monitoring %s/%s failed", domain, watched.model)
            continue
        reports.append(report)
        set_drift_gauges(report)
        signal = drift_signal(report)
        if signal is not None:
            signals.append(signal)
        signals += performance_signals(report, settings)
        if domain not in domains:
            domains.append(domain)
    with session_scope() as session:
        for domain in domains:
            signals += record_signals(session, domain, settings)
        signals += traffic_signals(session, plugins.domains, settings, now)
        traffic.prune(session, keep_s=max(10 * settings.traffic_window_s, 3600.0), now=now)
        changes = apply_signals(
            session,
            signals,
            for_s=settings.for_s,
            resolve_for_s=settings.resolve_for_s,
            resolve_ratio=settings.resolve_ratio,
            now=now,
        )
        set_alert_gauges(list_alerts(session, state="open", limit=1000))
    return reports, changes


def drift_history(
    session: Session, domain: str, model: str, limit: int = 2000
) -> list[dict[str, Any]]:
    query = (
        select(DriftPointRow)
        .where(DriftPointRow.domain == domain, DriftPointRow.model == model)
        .order_by(DriftPointRow.id.desc())
        .limit(limit)
    )
    return [
        {
            "created_at": row.created_at,
            "feature": row.feature,
            "statistic": row.statistic,
            "value": row.value,
            "threshold": row.threshold,
        }
        for row in session.scalars(query)
    ][::-1]


def drift_histograms(
    session: Session, domain: str, watched: WatchedModel, names: list[str]
) -> dict[str, dict[str, list[float]]]:
    """Reference vs current shares over the reference's display bins, per numeric feature of
    ``names`` (what the Operations page draws for drifted features)."""
    from verticals.core.monitoring.drift import current_histogram
    from verticals.core.monitoring.profile import NumericSketch

    _, profile = ensure_reference(session, domain, watched)
    window = watched.current(session, watched.window)
    found: dict[str, dict[str, list[float]]] = {}
    for name in names:
        sketch = profile.features.get(name)
        values = window.columns.get(name)
        if not isinstance(sketch, NumericSketch) or values is None:
            continue
        found[name] = {
            "edges": sketch.hist_edges,
            "reference": sketch.hist_shares,
            "current": current_histogram(sketch, values),
        }
    return found
