"""The Streamlit page, run headless with streamlit's AppTest (fake classifier)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.usefixtures("fake_models")

SCRIPT = """
from verticals.domains.medical.plugin import MedicalDomain
from verticals.core.auth import Principal
import streamlit as st

@st.cache_resource
def domain():
    return MedicalDomain()

domain().render_page(Principal.model_validate_json(st.session_state["viewer"]))
"""


def _app(viewer) -> AppTest:  # noqa: ANN001 - a Principal
    app = AppTest.from_string(SCRIPT, default_timeout=120)
    app.session_state["viewer"] = viewer.model_dump_json()
    return app


def _run(app: AppTest) -> AppTest:
    app.run(timeout=120)
    assert not app.exception, [e.message for e in app.exception]
    return app


def test_page_upload_review_and_overlay(make_user):
    clinician = make_user("clinician", "dr-who")
    app = _run(_app(clinician.principal))
    assert app.title[0].value == "Medical imaging"
    assert any("No studies yet" in i.value for i in app.info)

    # analyse a shipped demo sample
    app.selectbox(key="medical_sample").select("pneumonia_pneumonia_0.dcm")
    app.button(key="medical_analyse_sample").click()
    _run(app)
    assert any("pneumonia" in s.value for s in app.success), [s.value for s in app.success]

    # the worklist shows it, with window/level sliders and the overlay toggle
    assert len(app.dataframe) == 1
    study_id = app.selectbox(key="medical_open").value
    assert app.slider(key=f"wl_{study_id}") and app.slider(key=f"ww_{study_id}")
    # the overlay is on: its legend says what the colours mean; off: no heatmap caption
    assert any("Grad-CAM for 'pneumonia'" in c.value for c in app.caption)
    app.toggle(key=f"ov_{study_id}").set_value(False)
    _run(app)
    assert not any("Grad-CAM" in c.value for c in app.caption)
    app.slider(key=f"ww_{study_id}").set_value(50.0)
    _run(app)

    # correct the finding
    radio = app.radio[0]
    other = [o for o in radio.options if o != radio.value][0]
    radio.set_value(other)
    next(b for b in app.button if b.label == "Confirm / correct as dr-who").click()
    _run(app)
    assert any("Corrected" in s.value for s in app.success), (
        [b.label for b in app.button],
        [s.value for s in app.success],
        [e.value for e in app.error],
    )

    from verticals.domains.medical.runtime import InferenceEngine
    from verticals.domains.medical.service import StudyService

    study = StudyService(InferenceEngine()).get(study_id, tenant="default")
    assert study.status == "reviewed" and study.review.label == other
    _assert_acted_as(clinician.principal, study_id)


def _assert_acted_as(clinician, study_id: str) -> None:  # noqa: ANN001 - a Principal
    """The upload is recorded under the clinician's user id, the review in their action log."""
    from sqlalchemy import select
    from verticals.core.audit import recent_actions
    from verticals.core.db import session_scope
    from verticals.core.db.models import PredictionRecordRow

    with session_scope() as session:
        records = session.scalars(
            select(PredictionRecordRow).where(PredictionRecordRow.domain == "medical")
        ).all()
        actions = recent_actions(session, user_id=clinician.user_id)
    assert [(r.user_id, r.api_key_id) for r in records] == [(clinician.user_id, None)]
    assert [(a.action, a.target, a.role) for a in actions if a.domain == "medical"] == [
        ("review", study_id, "clinician")
    ]


def test_viewer_reads_studies_but_cannot_upload_or_review(make_user):
    app = _run(_app(make_user("viewer").principal))
    assert any("cannot upload" in i.value for i in app.info)
    assert not [b for b in app.button if b.label.startswith("Analyse")]


def test_model_cards_tab_without_registered_models(make_user):
    app = _run(_app(make_user("clinician").principal))
    assert any("No production model" in w.value for w in app.warning)
