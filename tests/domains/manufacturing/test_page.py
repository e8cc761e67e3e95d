"""The planners' page through Streamlit's AppTest, on the test database."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from .conftest import DEMO_ENGINES


def _page(viewer) -> None:  # noqa: ANN001 - a Principal, pickled into the script run
    from verticals.domains.manufacturing.plugin import ManufacturingDomain

    ManufacturingDomain().render_page(viewer)


def test_planner_sees_the_fleet_an_engine_and_the_machine_what_if(service, make_user):
    planner = make_user("maintenance-planner", "pat")
    service.upload_cmapss(planner.principal, DEMO_ENGINES.read_bytes())
    service.record_dead_letter(
        "default", source="mqtt", topic="plant/x/readings", error="bad JSON", payload=b"{"
    )
    app = AppTest.from_function(_page, args=(planner.principal,), default_timeout=120)
    app.run()
    assert not app.exception, app.exception
    assert app.header[0].value == "Manufacturing"
    assert [t.label for t in app.tabs] == [
        "Fleet",
        "Engine",
        "Machine tools",
        "Outcomes",
        "Model cards",
    ]
    fleet = app.dataframe[0].value
    ranks = list(zip(-fleet["risk"].round(3), fleet["RUL low"], strict=True))
    assert len(fleet) == 12 and ranks == sorted(ranks)
    assert {m.label for m in app.metric} & {"run", "inspect", "replace"}
    assert any(e.label.startswith("Dead letters: 1") for e in app.expander)
    assert app.selectbox[0].value == fleet["asset"].iloc[0]  # the engine tab: riskiest first
    assert any(m.label == "RUL (cycles)" for m in app.metric)
    # the what-if: a hot, slow machine is stopped for heat dissipation, logged under pat
    app.slider[0].set_value(302.5).run()  # air temperature
    app.slider[1].set_value(310.4).run()  # process temperature
    app.slider[2].set_value(1300).run()  # speed
    app.slider[3].set_value(60.0).run()  # torque
    next(b for b in app.button if b.label == "Score").click().run()
    assert not app.exception, app.exception
    assert any("heat dissipation" in m.value for m in app.markdown)
    _assert_scored_by(planner.principal)


def test_a_viewer_sees_the_fleet_without_upload_or_what_if(service, make_user):
    viewer = make_user("viewer", "val")
    app = AppTest.from_function(_page, args=(viewer.principal,), default_timeout=120)
    app.run()
    assert not app.exception, app.exception
    assert not any(b.label in {"Score", "Store readings"} for b in app.button)
    assert not app.slider


def _assert_scored_by(planner) -> None:  # noqa: ANN001
    from verticals.core.audit import recent_actions
    from verticals.core.db import session_scope

    with session_scope() as session:
        actions = recent_actions(session, user_id=planner.user_id)
    assert [(a.action, a.domain) for a in actions if a.action == "machine.score"] == [
        ("machine.score", "manufacturing")
    ]


def test_planner_records_an_outcome_in_the_core_queue(service, make_user):
    from verticals.core.db import session_scope
    from verticals.core.labeling import store
    from verticals.domains.manufacturing.model.shipping import FAILURE

    planner = make_user("maintenance-planner", "pat")
    with session_scope() as session:
        store.enqueue(
            session,
            tenant="default",
            domain="manufacturing",
            model=FAILURE,
            subject="mill-1@20261203T100000.000000Z",
            priority=0.9,
            strategy="uncertainty",
            reason="uncertain: p=0.41",
            score=0.41,
        )
    app = AppTest.from_function(_page, args=(planner.principal,), default_timeout=120)
    app.run()
    assert not app.exception, app.exception
    assert any("mill-1" in m.value and "41.0%" in m.value for m in app.markdown)
    next(b for b in app.button if b.label == "Failed").click().run()
    assert not app.exception, app.exception
    with session_scope() as session:
        (accepted,) = store.accepted_labels(session, domain="manufacturing", model=FAILURE)
        assert accepted.label == "failure"
        item = store.item_for(
            session,
            tenant="default",
            domain="manufacturing",
            model=FAILURE,
            subject=accepted.subject,
        )
        assert [a.labeller for a in store.annotations_of(session, item)] == ["pat"]
