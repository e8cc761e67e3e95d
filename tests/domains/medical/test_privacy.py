"""Patient identifiers never reach responses, stored files, the database or logs."""

from __future__ import annotations

import logging

import pydicom
import pytest
from sqlalchemy import text

pytestmark = pytest.mark.usefixtures("fake_models")


def _assert_clean(blob: str | bytes, phi_values: list[str], where: str) -> None:
    data = blob.decode("latin-1") if isinstance(blob, bytes) else blob
    for value in phi_values:
        assert value not in data, f"{value!r} leaked into {where}"


def test_phi_never_leaves_the_upload(
    medical_client, auth, dicom_factory, phi_values, verticals_home, db, caplog, capfd
):
    caplog.set_level(logging.DEBUG)
    headers = auth()
    upload = dicom_factory(phi=True)
    assert all(v.encode() in upload for v in ("Doe^Jane", "PHI-PID-7731", "ACC99881"))

    created = medical_client.post(
        "/v1/medical/studies", files={"file": ("Doe_Jane.dcm", upload)}, headers=headers
    )
    assert created.status_code == 201, created.text
    study_id = created.json()["study_id"]
    base = f"/v1/medical/studies/{study_id}"
    medical_client.post(f"{base}/review", json={"label": "normal"}, headers=headers)

    responses = {"POST /studies": created.content}
    for suffix in ("", "/heatmap.png", "/report.fhir.json", "/sr.dcm"):
        r = medical_client.get(base + suffix, headers=headers)
        assert r.status_code == 200, suffix
        responses[f"GET {suffix or '/'}"] = r.content
    responses["GET /studies"] = medical_client.get("/v1/medical/studies", headers=headers).content
    for where, body in responses.items():
        _assert_clean(body, phi_values, where)

    stored = [p for p in verticals_home.rglob("*") if p.is_file()]
    assert any(p.name == "image.dcm" for p in stored)
    for path in stored:
        if path.suffix in (".db", ".db-wal", ".db-shm") or "test.db" in path.name:
            continue
        _assert_clean(path.read_bytes(), phi_values, str(path.relative_to(verticals_home)))

    image = pydicom.dcmread(next(p for p in stored if p.name == "image.dcm"))
    assert image.PatientIdentityRemoved == "YES"
    assert not any(elem.tag.is_private for elem in image)

    with db.connect() as conn:
        for table in ("medical_studies", "medical_reviews", "prediction_records"):
            rows = conn.execute(text(f"SELECT * FROM {table}")).fetchall()
            assert rows, table
            _assert_clean(repr(rows), phi_values, f"table {table}")

    _assert_clean("\n".join(r.getMessage() for r in caplog.records), phi_values, "logs")
    out, err = capfd.readouterr()
    _assert_clean(out + err, phi_values, "stdout/stderr")
