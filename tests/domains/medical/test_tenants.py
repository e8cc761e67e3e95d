"""Two hospitals on one deployment: each sees, reviews and replays only its own studies."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.usefixtures("fake_models")

STUDIES = "/v1/medical/studies"


@pytest.fixture
def hospital(make_key):  # noqa: ANN201 - a header factory
    def headers(tenant: str) -> dict[str, str]:
        key = make_key(["medical:read", "medical:write"], name=tenant, tenant=tenant)
        return {"Authorization": f"Bearer {key}"}

    return headers


def _upload(client, headers: dict, data: bytes, key: str | None = None):  # noqa: ANN001, ANN202
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(
        STUDIES,
        files={"file": ("image.dcm", data, "application/octet-stream")},
        headers={**headers, **extra},
    )


def test_another_tenants_study_is_unknown_on_every_route(
    medical_client, hospital, dicom_factory
) -> None:
    a, b = hospital("hosp-a"), hospital("hosp-b")
    created = _upload(medical_client, a, dicom_factory())
    assert created.status_code == 201, created.text
    study = f"{STUDIES}/{created.json()['study_id']}"
    for path in ("", "/heatmap.png", "/report.fhir.json", "/sr.dcm"):
        assert medical_client.get(f"{study}{path}", headers=a).status_code == 200, path
        assert medical_client.get(f"{study}{path}", headers=b).status_code == 404, path
    review = medical_client.post(f"{study}/review", json={"label": "normal"}, headers=b)
    assert review.status_code == 404
    assert medical_client.get(study, headers=a).json()["status"] == "predicted"
    listed_a = medical_client.get(STUDIES, headers=a).json()["studies"]
    listed_b = medical_client.get(STUDIES, headers=b).json()["studies"]
    assert [s["study_id"] for s in listed_a] == [created.json()["study_id"]]
    assert listed_b == []
    ok = medical_client.post(f"{study}/review", json={"label": "normal"}, headers=a)
    assert ok.status_code == 201
    assert medical_client.get(f"{STUDIES}?status=reviewed", headers=b).json()["studies"] == []


def test_the_same_idempotency_key_in_two_tenants_makes_two_studies(
    medical_client, hospital, dicom_factory
) -> None:
    a, b = hospital("hosp-a"), hospital("hosp-b")
    data = dicom_factory()
    first = _upload(medical_client, a, data, key="upload-1")
    again = _upload(medical_client, a, data, key="upload-1")
    other = _upload(medical_client, b, data, key="upload-1")
    assert first.status_code == again.status_code == other.status_code == 201, other.text
    assert again.json()["study_id"] == first.json()["study_id"]
    assert other.json()["study_id"] != first.json()["study_id"]
    # a different body under B's key is B's own conflict, not a view of A's upload
    different = _upload(medical_client, b, dicom_factory(), key="upload-1")
    assert different.status_code == 409
    assert medical_client.get(f"{STUDIES}/{other.json()['study_id']}", headers=b).status_code == 200


def test_existing_studies_move_into_the_default_tenant(db, plugins) -> None:
    from verticals.core.db.migrate import downgrade, upgrade

    downgrade(plugins.migration_dirs(), target="medical_0002")
    with db.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO medical_studies (id, created_at, task, status, model_version,"
                " positive_label, probability, predicted_label, threshold, findings,"
                " source_kind, rows, columns, window_center, window_width, study_uid,"
                " series_uid, sop_instance_uid, sop_class_uid, notes, storage_dir, finding,"
                " in_scope, warnings) VALUES (:id, '2026-12-01 10:00:00', 'pneumonia',"
                " 'reviewed', 'v1', 'pneumonia', 0.9, 'pneumonia', 0.5, '[]', 'dicom', 28, 28,"
                " 0, 1, '1', '2', '3', '4', '[]', 'x', 'pneumonia', true, '[]')"
            ),
            {"id": "a" * 32},
        )
        conn.execute(
            text(
                "INSERT INTO medical_reviews (study_id, created_at, label, agrees,"
                " model_version, task) VALUES (:id, '2026-12-01 10:00:00', 'normal', false,"
                " 'v1', 'pneumonia')"
            ),
            {"id": "a" * 32},
        )
    upgrade(plugins.migration_dirs())
    with db.connect() as conn:
        for table in ("medical_studies", "label_items", "label_annotations"):
            tenants = conn.execute(text(f"SELECT DISTINCT tenant FROM {table}")).scalars().all()
            assert tenants == ["default"], table
        # the review moved onto core's labeling queue (medical_0005), its label kept
        item = conn.execute(text("SELECT subject, model, label FROM label_items")).one()
        assert tuple(item) == ("a" * 32, "pneumonia", "normal")


SCRIPT = """
from verticals.domains.medical.plugin import MedicalDomain
from verticals.core.auth import Principal
import streamlit as st

domain = MedicalDomain()
domain.render_page(Principal.model_validate_json(st.session_state["viewer"]))
"""


def test_the_worklist_shows_only_the_viewers_tenant(
    medical_client, hospital, dicom_factory, make_user
) -> None:
    a, b = hospital("hosp-a"), hospital("hosp-b")
    mine = _upload(medical_client, b, dicom_factory()).json()["study_id"]
    theirs = _upload(medical_client, a, dicom_factory()).json()["study_id"]
    viewer = make_user("clinician", "dr-b", tenant="hosp-b")
    app = AppTest.from_string(SCRIPT, default_timeout=120)
    app.session_state["viewer"] = viewer.principal.model_dump_json()
    app.run(timeout=120)
    assert not app.exception, [e.message for e in app.exception]
    options = list(app.selectbox(key="medical_open").options)
    assert any(mine[:8] in o for o in options)
    assert not any(theirs[:8] in o for o in options)
    assert len(app.dataframe) == 1 and len(app.dataframe[0].value) == 1
