"""The Operations page: shown to roles with ops:read, alerts acknowledged with ops:write."""

from __future__ import annotations

from verticals.core.db import session_scope
from verticals.core.db.base import utcnow
from verticals.core.monitoring.alerts import Signal, apply_signals, list_alerts


def _run(app):  # noqa: ANN001, ANN202
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def test_admin_sees_drift_and_acknowledges_an_alert(app, pages, signed_in) -> None:
    signal = Signal(
        rule="drift",
        domain="finance",
        model="card-fraud-xgb",
        ratio=3.0,
        value=0.6,
        summary="drift in finance/card-fraud-xgb: amount",
    )
    with session_scope() as session:
        (fired,) = apply_signals(
            session, [signal], for_s=0, resolve_for_s=0, resolve_ratio=0.8, now=utcnow()
        )
    user = signed_in(app, "admin", "ops")
    _run(app)
    app._page_hash = pages(app)["operations"]
    _run(app)
    assert app.title[0].value == "Operations"
    assert "finance / card-fraud-xgb" in [s.value for s in app.subheader]
    button = next(
        b for b in app.button if b.label.startswith(f"Acknowledge alert {fired.alert.id}")
    )
    button.click()
    _run(app)
    with session_scope() as session:
        (alert,) = list_alerts(session)
    assert alert.state == "acknowledged" and alert.acknowledged_by == user.name


def test_roles_without_ops_read_do_not_get_the_page(app, pages, signed_in) -> None:
    signed_in(app, "clinician")
    _run(app)
    assert "operations" not in pages(app)


def test_a_domain_page_shows_its_open_alerts_in_one_line(app, pages, signed_in) -> None:
    signal = Signal(
        rule="drift",
        domain="finance",
        model="card-fraud-xgb",
        ratio=3.0,
        value=0.6,
        summary="drift in finance/card-fraud-xgb: amount",
    )
    signed_in(app, "fraud-analyst")
    _run(app)
    app._page_hash = pages(app)["finance"]
    _run(app)
    assert "no open alerts" in app.caption[0].value
    with session_scope() as session:
        apply_signals(session, [signal], for_s=0, resolve_for_s=0, resolve_ratio=0.8, now=utcnow())
    _run(app)
    (banner,) = app.warning
    assert "1 open model alert" in banner.value and "amount" in banner.value


def test_a_staged_challenger_shows_its_shadow_comparison(app, pages, signed_in) -> None:
    from datetime import timedelta

    from verticals.core.labeling.shadow_tables import ShadowPredictionRow
    from verticals.core.labeling.store import annotate, enqueue
    from verticals.core.plugins import discover
    from verticals.core.registry.store import production_version, register

    discover().get("finance").ensure_production_model()
    with session_scope() as session:
        champion = production_version(session, "finance", "card-fraud-xgb")
        register(
            session,
            domain="finance",
            name="card-fraud-xgb",
            version="challenger",
            artifact_path=champion.artifact_path,
            stage="staging",
        )
        later = utcnow() + timedelta(seconds=1)
        for subject, score, served, label in [("a", 0.9, 0.2, "fraud"), ("b", 0.1, 0.8, "genuine")]:
            session.add(
                ShadowPredictionRow(
                    domain="finance",
                    model="card-fraud-xgb",
                    version="challenger",
                    subject=subject,
                    score=score,
                    champion_version=champion.version,
                    champion_score=served,
                    served_at=later,
                )
            )
            item = enqueue(
                session,
                tenant="default",
                domain="finance",
                model="card-fraud-xgb",
                subject=subject,
                priority=0,
            )
            annotate(session, item, label, labeller="ana")
    signed_in(app, "admin", "ops")
    _run(app)
    app._page_hash = pages(app)["operations"]
    _run(app)
    (line,) = [c.value for c in app.caption if c.value.startswith("shadow challenger vs")]
    assert "on 2 labelled live subjects (1 fraud" in line
    assert "ROC AUC 1.0000 vs 0.0000" in line
