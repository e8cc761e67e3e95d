"""HTTP behaviour of /v1/medical through the whole app (fake classifier)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pydicom
import pytest
from sqlalchemy import select

pytestmark = pytest.mark.usefixtures("fake_models")


def _upload(client, headers, data: bytes, name="image.dcm", task=None, extra_headers=None):
    form = {"task": task} if task is not None else {}
    return client.post(
        "/v1/medical/studies",
        files={"file": (name, data, "application/octet-stream")},
        data=form,
        headers={**headers, **(extra_headers or {})},
    )


def test_upload_dicom_returns_findings_and_links(medical_client, auth, dicom_factory):
    headers = auth()
    response = _upload(medical_client, headers, dicom_factory())
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {
        "study_id",
        "task",
        "finding",
        "predicted_label",
        "positive_label",
        "threshold",
        "in_scope",
        "ood_score",
        "warnings",
        "findings",
        "model_version",
        "heatmap_url",
    }
    assert body["in_scope"] is True and body["warnings"] == []
    assert body["finding"] == body["predicted_label"] in {"normal", "pneumonia"}
    assert body["task"] == "pneumonia"  # CR + CHEST
    assert body["model_version"] == "fake-1"
    labels = {f["label"]: f["probability"] for f in body["findings"]}
    assert set(labels) == {"normal", "pneumonia"}
    assert labels["normal"] + labels["pneumonia"] == pytest.approx(1.0)
    assert body["heatmap_url"] == f"/v1/medical/studies/{body['study_id']}/heatmap.png"

    study = medical_client.get(f"/v1/medical/studies/{body['study_id']}", headers=headers)
    assert study.status_code == 200
    detail = study.json()
    assert detail["status"] == "predicted"
    assert detail["rows"] == 40 and detail["columns"] == 64
    assert detail["modality"] == "CR" and detail["body_part"] == "CHEST"

    heatmap = medical_client.get(body["heatmap_url"], headers=headers)
    assert heatmap.status_code == 200
    assert heatmap.headers["content-type"] == "image/png"
    assert heatmap.content.startswith(b"\x89PNG")

    listing = medical_client.get("/v1/medical/studies", headers=headers).json()
    assert [s["study_id"] for s in listing["studies"]] == [body["study_id"]]


def test_probability_follows_the_image(medical_client, auth, dicom_factory):
    headers = auth()
    dark = np.full((32, 32), 10, dtype=np.uint8)
    bright = np.full((32, 32), 240, dtype=np.uint8)
    bright[0, 0] = 0  # min..max normalisation needs a range
    dark[0, 0] = 255
    probs = []
    for pixels in (dark, bright):
        r = _upload(medical_client, headers, dicom_factory(pixels=pixels, bits=8))
        assert r.status_code == 201, r.text
        probs.append({f["label"]: f["probability"] for f in r.json()["findings"]}["pneumonia"])
    assert probs[0] < 0.2 < 0.8 < probs[1]


def test_task_from_modality_and_body_part(medical_client, auth, dicom_factory):
    headers = auth()
    r = _upload(medical_client, headers, dicom_factory(modality="US", body_part="BREAST", bits=8))
    assert r.status_code == 201, r.text
    assert r.json()["task"] == "breast"
    assert {f["label"] for f in r.json()["findings"]} == {"malignant", "normal_or_benign"}


@pytest.mark.parametrize(
    ("modality", "body_part"), [("CT", "CHEST"), ("US", "ABDOMEN"), ("CR", None), ("MG", "BREAST")]
)
def test_upload_no_task_fits_is_422(medical_client, auth, dicom_factory, modality, body_part):
    r = _upload(medical_client, auth(), dicom_factory(modality=modality, body_part=body_part))
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "invalid_input"
    assert "task" in error["message"]


def test_explicit_task_overrides_and_unknown_task_is_422(medical_client, auth, dicom_factory):
    headers = auth()
    r = _upload(
        medical_client, headers, dicom_factory(modality="CT", body_part="HEAD"), task="breast"
    )
    assert r.status_code == 201 and r.json()["task"] == "breast"
    r = _upload(medical_client, headers, dicom_factory(), task="brain")
    assert r.status_code == 422
    assert r.json()["error"]["details"]["known_tasks"] == ["breast", "pneumonia"]


def test_png_and_jpeg_need_a_task(medical_client, auth, png_factory):
    headers = auth()
    image = (np.arange(50 * 70) % 256).reshape(50, 70).astype(np.uint8)
    assert _upload(medical_client, headers, png_factory(image), "x.png").status_code == 422
    for fmt, name in (("PNG", "x.png"), ("JPEG", "x.jpg")):
        r = _upload(medical_client, headers, png_factory(image, fmt), name, task="pneumonia")
        assert r.status_code == 201, r.text
        sr = medical_client.get(
            f"/v1/medical/studies/{r.json()['study_id']}/sr.dcm", headers=headers
        )
        assert sr.status_code == 200


def test_zip_series_uses_the_middle_instance(medical_client, auth, dataset_factory, to_bytes):
    headers = auth()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for number in (3, 1, 2):  # out of order on purpose
            pixels = np.full((20, 20), number * 60, dtype=np.uint8)
            pixels[0, 0] = 0
            ds = dataset_factory(pixels=pixels, bits=8, InstanceNumber=number)
            archive.writestr(f"series/img{number}.dcm", to_bytes(ds))
        archive.writestr("series/readme.txt", "not dicom")
    r = _upload(medical_client, headers, buffer.getvalue(), "series.zip")
    assert r.status_code == 201, r.text
    detail = medical_client.get(
        f"/v1/medical/studies/{r.json()['study_id']}", headers=headers
    ).json()
    assert detail["source_kind"] == "zip"
    assert any("middle one" in note for note in detail["notes"])


@pytest.mark.parametrize(
    ("data", "name", "status"),
    [
        (b"", "empty.dcm", 422),
        (b"hello, not an image at all" * 10, "x.dcm", 415),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "broken.png", 422),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "broken.jpg", 422),
        (b"PK\x03\x04" + b"\x00" * 40, "broken.zip", 422),
        (b"\x00" * 128 + b"DICM" + b"\x02\x00" * 20, "garbage.dcm", 422),
    ],
)
def test_unreadable_uploads_are_4xx(medical_client, auth, data, name, status):
    r = _upload(medical_client, auth(), data, name, task="pneumonia")
    assert r.status_code == status, r.text
    assert r.json()["error"]["message"]


def test_truncated_dicom_is_422(medical_client, auth, dicom_factory):
    data = dicom_factory()
    r = _upload(medical_client, auth(), data[: len(data) - 500])
    assert r.status_code == 422
    assert "pixel data" in r.json()["error"]["message"]


def test_dicom_without_pixels_is_422(medical_client, auth, dataset_factory, to_bytes):
    ds = dataset_factory()
    del ds.PixelData
    r = _upload(medical_client, auth(), to_bytes(ds))
    assert r.status_code == 422
    assert "no pixel data" in r.json()["error"]["message"]


def test_unsupported_transfer_syntax_is_415(medical_client, auth, dataset_factory, to_bytes):
    from pydicom.encaps import encapsulate

    ds = dataset_factory()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: no decoder
    ds.PixelData = encapsulate([bytes(ds.PixelData)])
    r = _upload(medical_client, auth(), to_bytes(ds))
    assert r.status_code == 415, r.text


def test_oversized_upload_is_413(medical_client, auth, dicom_factory, monkeypatch):
    from verticals.domains.medical.settings import reset_medical_settings

    monkeypatch.setenv("VERTICALS_MEDICAL_MAX_UPLOAD_BYTES", "1000")
    reset_medical_settings()
    try:
        r = _upload(medical_client, auth(), dicom_factory())
    finally:
        monkeypatch.delenv("VERTICALS_MEDICAL_MAX_UPLOAD_BYTES")
        reset_medical_settings()
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"


def test_missing_file_field_is_422(medical_client, auth):
    r = medical_client.post("/v1/medical/studies", data={"task": "pneumonia"}, headers=auth())
    assert r.status_code == 422


def test_scopes(medical_client, auth, dicom_factory):
    reader = auth("medical:read")
    r = _upload(medical_client, reader, dicom_factory())
    assert r.status_code == 403
    writer = auth("medical:write")
    created = _upload(medical_client, writer, dicom_factory())
    assert created.status_code == 201
    study = f"/v1/medical/studies/{created.json()['study_id']}"
    assert medical_client.get(study, headers=writer).status_code == 403
    assert medical_client.get(study, headers=reader).status_code == 200
    assert medical_client.get(study).status_code == 401
    assert medical_client.get(study, headers=auth("finance:score")).status_code == 403


def test_unknown_study_is_404(medical_client, auth):
    headers = auth()
    for path in ("", "/heatmap.png", "/report.fhir.json", "/sr.dcm"):
        r = medical_client.get(f"/v1/medical/studies/{'0' * 32}{path}", headers=headers)
        assert r.status_code == 404, path
    assert medical_client.get("/v1/medical/studies/../x", headers=headers).status_code == 404


def test_review_is_stored_as_feedback(medical_client, auth, dicom_factory, db):
    from verticals.core.db import session_scope
    from verticals.core.labeling.tables import LabelAnnotationRow, LabelItemRow

    headers = auth()
    created = _upload(medical_client, headers, dicom_factory()).json()
    base = f"/v1/medical/studies/{created['study_id']}"
    predicted = medical_client.get(base, headers=headers).json()["predicted_label"]
    other = "normal" if predicted == "pneumonia" else "pneumonia"
    bad = medical_client.post(f"{base}/review", json={"label": "cat"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["error"]["details"]["allowed"]
    assert medical_client.post(f"{base}/review", json={}, headers=headers).status_code == 422
    r = medical_client.post(
        f"{base}/review", json={"label": other, "comment": "subtle opacity"}, headers=headers
    )
    assert r.status_code == 201, r.text
    assert r.json()["agrees"] is False and r.json()["label"] == other
    detail = medical_client.get(base, headers=headers).json()
    assert detail["status"] == "reviewed" and detail["review"]["label"] == other
    with session_scope() as session:  # the review is an annotation in core's labeling queue
        (item,) = session.scalars(select(LabelItemRow)).all()
        assert (item.domain, item.model, item.subject) == (
            "medical",
            "pneumonia",
            created["study_id"],
        )
        assert item.strategy == "uncertainty" and item.reason
        assert (item.label, item.status) == (other, "labelled")
        rows = session.scalars(select(LabelAnnotationRow)).all()
        assert [(row.label, row.detail["model_version"], row.note) for row in rows] == [
            (other, "fake-1", "subtle opacity")
        ]


def test_fhir_report(medical_client, auth, dicom_factory):
    headers = auth()
    created = _upload(medical_client, headers, dicom_factory()).json()
    base = f"/v1/medical/studies/{created['study_id']}"
    r = medical_client.get(f"{base}/report.fhir.json", headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/fhir+json")
    report = r.json()
    assert report["resourceType"] == "DiagnosticReport"
    assert report["id"] == created["study_id"]
    assert report["status"] == "preliminary"
    assert "subject" not in report
    observations = [c for c in report["contained"] if c["resourceType"] == "Observation"]
    assert len(observations) == 2
    assert {ref["reference"] for ref in report["result"]} == {f"#{o['id']}" for o in observations}
    values = sorted(o["valueQuantity"]["value"] for o in observations)
    assert sum(values) == pytest.approx(1.0, abs=1e-5)
    pneumonia = [o for o in observations if o["code"]["text"] == "pneumonia"][0]
    assert pneumonia["code"]["coding"][0] == {
        "system": "http://snomed.info/sct",
        "code": "233604007",
        "display": "Pneumonia",
    }
    medical_client.post(f"{base}/review", json={"label": "pneumonia"}, headers=headers)
    assert (
        medical_client.get(f"{base}/report.fhir.json", headers=headers).json()["status"] == "final"
    )


def test_structured_report_references_the_deidentified_image(
    medical_client, auth, dicom_factory, verticals_home
):
    headers = auth()
    created = _upload(medical_client, headers, dicom_factory(phi=True)).json()
    r = medical_client.get(f"/v1/medical/studies/{created['study_id']}/sr.dcm", headers=headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/dicom"
    sr = pydicom.dcmread(io.BytesIO(r.content))
    assert sr.SOPClassUID.name == "Comprehensive 3D SR Storage"
    stored = pydicom.dcmread(next((verticals_home / "medical" / "studies").glob("*/image.dcm")))
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0]
    assert evidence.StudyInstanceUID == stored.StudyInstanceUID
    referenced = evidence.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert referenced.ReferencedSOPInstanceUID == stored.SOPInstanceUID
    assert str(sr.PatientName) == "ANONYMOUS^"
    # the same SR is served again (stable UIDs)
    again = medical_client.get(f"/v1/medical/studies/{created['study_id']}/sr.dcm", headers=headers)
    assert again.content == r.content


def test_every_prediction_is_audited_and_idempotent(medical_client, auth, dicom_factory, db):
    from verticals.core.db import session_scope
    from verticals.core.db.models import PredictionRecordRow

    headers = auth()
    data = dicom_factory()
    key = {"Idempotency-Key": "upload-0001"}
    first = _upload(medical_client, headers, data, extra_headers=key)
    second = _upload(medical_client, headers, data, extra_headers=key)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    conflict = _upload(medical_client, headers, dicom_factory(modality="DX"), extra_headers=key)
    assert conflict.status_code == 409
    _upload(medical_client, headers, data)
    with session_scope() as session:
        rows = session.scalars(
            select(PredictionRecordRow).where(PredictionRecordRow.domain == "medical")
        ).all()
        assert len(rows) == 2
        assert {row.model_version for row in rows} == {"fake-1"}
        assert rows[0].output == first.json()
        assert all(row.api_key_id is not None and row.latency_ms > 0 for row in rows)
    listing = medical_client.get("/v1/medical/studies", headers=headers).json()["studies"]
    assert len(listing) == 2  # the replay stored nothing twice


def test_readiness_reports_loaded_models(medical_client):
    r = medical_client.get("/readyz")
    medical = r.json()["domains"]["medical"]
    assert medical["ready"] is True
    assert medical["model_version"] == "breast=fake-1,pneumonia=fake-1"


def test_openapi_lists_the_routes(medical_client):
    paths = medical_client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/medical/studies",
        "/v1/medical/studies/{study_id}",
        "/v1/medical/studies/{study_id}/heatmap.png",
        "/v1/medical/studies/{study_id}/report.fhir.json",
        "/v1/medical/studies/{study_id}/sr.dcm",
        "/v1/medical/studies/{study_id}/review",
    ):
        assert path in paths, path
    assert json.dumps(paths)  # serialisable


def test_reviews_export_as_a_retraining_folder(medical_client, auth, dicom_factory, tmp_path):
    import csv

    from verticals.domains.medical.imaging import load_image_file
    from verticals.domains.medical.runtime import InferenceEngine
    from verticals.domains.medical.service import StudyService

    headers = auth()
    ids = [_upload(medical_client, headers, dicom_factory()).json()["study_id"] for _ in range(3)]
    for study_id, label in zip(ids[:2], ("pneumonia", "normal"), strict=True):
        medical_client.post(
            f"/v1/medical/studies/{study_id}/review", json={"label": label}, headers=headers
        )
    n = StudyService(InferenceEngine()).export_feedback("pneumonia", tmp_path / "feedback")
    assert n == 2
    with open(tmp_path / "feedback" / "labels.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["file"], r["label"]) for r in rows] == [
        (f"{ids[0]}.dcm", "pneumonia"),
        (f"{ids[1]}.dcm", "normal"),
    ]
    assert load_image_file(tmp_path / "feedback" / rows[0]["file"]).shape == (40, 64)


def test_answers_carry_the_decision_at_the_threshold_not_the_arg_max(
    medical_client, auth, fake_models, png_factory
):
    """A borderline breast study: p(malignant) 0.40 is below one half but above the model's
    threshold, so the finding is malignant although normal_or_benign has the larger share."""
    fake_models["breast"].threshold = 0.32
    headers = auth()
    image = np.full((28, 28), round(0.40 * 255), dtype=np.uint8)
    response = _upload(medical_client, headers, png_factory(image), name="b.png", task="breast")
    assert response.status_code == 201, response.text
    body = response.json()
    probabilities = {f["label"]: f["probability"] for f in body["findings"]}
    assert probabilities["normal_or_benign"] > probabilities["malignant"]
    assert body["finding"] == body["predicted_label"] == "malignant"
    assert body["threshold"] == pytest.approx(0.32) and body["positive_label"] == "malignant"

    stored = medical_client.get(f"/v1/medical/studies/{body['study_id']}", headers=headers).json()
    for key in ("finding", "predicted_label", "threshold", "in_scope", "warnings", "findings"):
        assert stored[key] == body[key]
    listing = medical_client.get("/v1/medical/studies", headers=headers).json()["studies"]
    assert listing[0]["finding"] == "malignant"


def test_a_header_that_does_not_fit_the_task_is_indeterminate(medical_client, auth, dicom_factory):
    """A chest radiograph (CR, CHEST) sent as a breast ultrasound: no label is claimed."""
    headers = auth()
    response = _upload(medical_client, headers, dicom_factory(), task="breast")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["finding"] == "indeterminate" and body["in_scope"] is False
    assert body["predicted_label"] in {"malignant", "normal_or_benign"}
    assert any("modality CR does not fit task 'breast'" in w for w in body["warnings"])
    assert any(w.startswith("body part does not fit task") for w in body["warnings"])
    fhir = medical_client.get(
        f"/v1/medical/studies/{body['study_id']}/report.fhir.json", headers=headers
    ).json()
    assert "indeterminate" in fhir["conclusion"]
    sr = medical_client.get(f"/v1/medical/studies/{body['study_id']}/sr.dcm", headers=headers)
    assert sr.status_code == 200 and b"82334004" in sr.content  # SNOMED CT Indeterminate


def test_an_image_unlike_the_training_images_is_indeterminate(
    medical_client, auth, fake_models, png_factory
):
    fake_models["pneumonia"].ood = 3.0
    headers = auth()
    noise = np.random.default_rng(0).integers(0, 256, size=(64, 64), dtype=np.uint8)
    response = _upload(medical_client, headers, png_factory(noise), name="n.png", task="pneumonia")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["finding"] == "indeterminate" and body["ood_score"] == pytest.approx(3.0)
    assert any("unlike the training images" in w for w in body["warnings"])

    fake_models["pneumonia"].ood = 0.9  # the same picture, now within the calibrated cut
    again = _upload(medical_client, headers, png_factory(noise), name="n.png", task="pneumonia")
    assert again.json()["finding"] in {"normal", "pneumonia"}


def test_a_retry_of_an_answer_stored_before_the_decision_fields_replays(
    medical_client, auth, dicom_factory
):
    """Answers stored before medical_0002 lack finding/threshold/...: a retry of one is rebuilt
    from the study row (which the migration filled), never a 500."""
    from sqlalchemy import select
    from verticals.core.db import session_scope
    from verticals.core.db.models import PredictionRecordRow

    headers = auth()
    upload = dicom_factory()
    first = _upload(medical_client, headers, upload, extra_headers={"Idempotency-Key": "legacy-1"})
    assert first.status_code == 201, first.text
    old_keys = {"study_id", "task", "findings", "model_version", "heatmap_url"}
    with session_scope() as session:
        row = session.scalar(
            select(PredictionRecordRow).where(PredictionRecordRow.idempotency_key == "legacy-1")
        )
        row.output = {k: v for k, v in row.output.items() if k in old_keys}
    again = _upload(medical_client, headers, upload, extra_headers={"Idempotency-Key": "legacy-1"})
    assert again.status_code in (200, 201), again.text
    assert again.json() == first.json()


def test_each_recorded_study_counts_in_the_prediction_metrics(medical_client, auth, dicom_factory):
    from prometheus_client import REGISTRY

    labels = {"domain": "medical", "model": "pneumonia", "version": "fake-1"}
    before = REGISTRY.get_sample_value("verticals_predictions_total", labels) or 0.0
    assert _upload(medical_client, auth(), dicom_factory()).status_code == 201
    assert REGISTRY.get_sample_value("verticals_predictions_total", labels) == before + 1
    scraped = medical_client.get("/metrics", headers=auth("metrics:read")).text
    assert 'verticals_predictions_total{domain="medical",model="pneumonia",version="fake-1"}' in (
        scraped
    )
