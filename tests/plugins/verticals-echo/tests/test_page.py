"""The page through Streamlit's AppTest: what a viewer may do, and that it calls the service."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from verticals_echo import NAME


def _page(scopes: list[str]) -> None:
    from verticals.core.auth import Principal

    from verticals_echo.plugin import EchoDomain

    EchoDomain().render_page(Principal(name="ann", scopes=scopes, tenant="t1"))


def _run(scopes: list[str]) -> AppTest:
    app = AppTest.from_function(_page, args=(scopes,), default_timeout=60)
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def test_a_scorer_scores_and_the_action_is_logged(domain):
    from verticals.core.audit import recent_actions
    from verticals.core.db import session_scope

    app = _run([f"{NAME}:score"])
    app.number_input(key=f"{NAME}_x1").set_value(2.0)
    app.number_input(key=f"{NAME}_x3").set_value(1.0)
    app.button[0].click().run()
    assert app.metric[0].value == "2.1000"
    with session_scope() as session:
        assert [(a.action, a.actor) for a in recent_actions(session)] == [("score", "ann")]
    assert not app.text_input  # no note form without the write scope


def test_a_reader_sees_notes_and_no_forms(domain, viewer):
    domain.service.add_note(viewer, "seen")
    app = _run([f"{NAME}:read"])
    assert not app.number_input and not app.text_input
    assert list(app.dataframe[0].value["text"]) == ["seen"]
