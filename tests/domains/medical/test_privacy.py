"""Patient identifiers never reach responses, stored files, the database or logs; images whose
pixels may show identifiers are refused."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage
from sqlalchemy import inspect, text

pytestmark = pytest.mark.usefixtures("fake_models")

NAMED = {  # the identifiers of the measured defect
    "OtherPatientIDs": "PHI-OTHER-4410",
    "ClinicalTrialSubjectID": "PHI-CTSUBJ-5521",
    "ClinicalTrialSubjectReadingID": "PHI-CTREAD-6632",
    "ClinicalTrialSponsorName": "Acme Sponsor PHI-7743",
}
EXTRA = ["PHI-OVERLAY-8854", "PHI-PRIVNEST-9965", "PHI-NESTED-1176", "Nestor^Deepname"]


def _demo_dir() -> Path:
    from verticals.domains.medical import deid

    return Path(deid.__file__).parent / "demo"


def _assert_clean(blob: str | bytes, values: list[str], where: str, find_leaks) -> None:
    leaks = find_leaks(blob, values)
    assert not leaks, f"{leaks[:5]} ({len(leaks)} values) leaked into {where}"


def _identified_upload(dataset_factory, profile, to_bytes) -> tuple[bytes, list[str]]:
    """A DICOM holding every table attribute (top level and nested) plus named PHI."""
    ds = dataset_factory(phi=True)
    for keyword, value in NAMED.items():
        setattr(ds, keyword, value)
    planted = profile.plant(ds, skip={int(elem.tag) for elem in ds})  # the rest of the table
    ds.add_new(0x60000010, "US", 8)  # an overlay plane, with its comment
    ds.add_new(0x60000011, "US", 8)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60003000, "OW", b"\xff" * 8)
    ds.add_new(0x60004000, "LT", f"{EXTRA[0]} overlay comment")
    inner = Dataset()  # sequence PHI two levels down, a private tag among it
    inner.PatientName = EXTRA[3]
    inner.OtherPatientIDs = EXTRA[2]
    inner.private_block(0x0011, "ACME NEST", create=True).add_new(0x01, "LO", EXTRA[1])
    ds.AnatomicRegionSequence[0].ReferencedPatientSequence = Sequence([inner])
    upload = to_bytes(ds)
    values = sorted(set(profile.must_vanish(planted)) | set(NAMED.values()) | set(EXTRA), key=str)
    return upload, values


def test_phi_never_leaves_the_upload(
    medical_client,
    auth,
    dataset_factory,
    to_bytes,
    profile,
    phi_values,
    verticals_home,
    db,
    caplog,
    capfd,
):
    caplog.set_level(logging.DEBUG)
    headers = auth()
    upload, planted = _identified_upload(dataset_factory, profile, to_bytes)
    values = sorted(set(planted) | set(phi_values))
    assert len(values) > 1000
    missing = set(values) - set(profile.find_leaks(upload, values))
    assert not missing, sorted(missing)[:5]  # every value is really in the upload

    created = medical_client.post(
        "/v1/medical/studies", files={"file": ("Doe_Jane.dcm", upload)}, headers=headers
    )
    assert created.status_code == 201, created.text
    study_id = created.json()["study_id"]
    base = f"/v1/medical/studies/{study_id}"
    review = medical_client.post(f"{base}/review", json={"label": "normal"}, headers=headers)

    responses = {"POST /studies": created.content, "POST /review": review.content}
    for suffix in ("", "/heatmap.png", "/report.fhir.json", "/sr.dcm"):
        r = medical_client.get(base + suffix, headers=headers)
        assert r.status_code == 200, suffix
        responses[f"GET {suffix or '/'}"] = r.content
    responses["GET /studies"] = medical_client.get("/v1/medical/studies", headers=headers).content
    for where, body in responses.items():
        _assert_clean(body, values, where, profile.find_leaks)

    stored = [p for p in verticals_home.rglob("*") if p.is_file()]
    assert any(p.name == "image.dcm" for p in stored)
    for path in stored:  # the database file too: no identifier was ever written to it
        _assert_clean(
            path.read_bytes(), values, str(path.relative_to(verticals_home)), profile.find_leaks
        )

    image = pydicom.dcmread(next(p for p in stored if p.name == "image.dcm"))
    assert image.PatientIdentityRemoved == "YES"
    assert image.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert image.LongitudinalTemporalInformationModified == "REMOVED"
    assert "OtherPatientIDs" not in image
    assert image.ClinicalTrialSubjectID == image.ClinicalTrialSponsorName == "ANON"  # D

    def groups(ds: Dataset) -> set[int]:
        found = set()
        for elem in ds:
            found.add(elem.tag.group)
            if elem.VR == "SQ":
                for item in elem.value:
                    found |= groups(item)
        return found

    assert not any(g & 1 or 0x6000 <= g <= 0x60FF for g in groups(image))

    with db.connect() as conn:
        tables = inspect(conn).get_table_names()
        assert {"medical_studies", "label_annotations", "prediction_records"} <= set(tables)
        for table in tables:
            rows = conn.execute(text(f'SELECT * FROM "{table}"')).fetchall()
            _assert_clean(repr(rows), values, f"table {table}", profile.find_leaks)

    logged = "\n".join(r.getMessage() for r in caplog.records)
    _assert_clean(logged, values, "logs", profile.find_leaks)
    out, err = capfd.readouterr()
    _assert_clean(out + err, values, "stdout/stderr", profile.find_leaks)


# ---------------------------------------------------------------- burned-in annotation


def _post(client, headers, data: bytes, name: str = "image.dcm"):
    return client.post("/v1/medical/studies", files={"file": (name, data)}, headers=headers)


@pytest.fixture
def opt_in(monkeypatch):
    from verticals.domains.medical.settings import reset_medical_settings

    monkeypatch.setenv("VERTICALS_MEDICAL_REJECT_BURNED_IN_ANNOTATION", "false")
    reset_medical_settings()
    yield
    monkeypatch.delenv("VERTICALS_MEDICAL_REJECT_BURNED_IN_ANNOTATION")
    reset_medical_settings()


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ({"BurnedInAnnotation": "YES"}, "BurnedInAnnotation=YES"),
        ({"BurnedInAnnotation": None}, "Secondary Capture"),  # SC class, no flag
        ({"BurnedInAnnotation": None, "SOPClassUID": CTImageStorage, "ConversionType": "WSD"}, ""),
    ],
)
def test_burned_in_annotation_is_refused(
    medical_client, auth, dicom_factory, verticals_home, attrs, reason
):
    headers = auth()
    r = _post(medical_client, headers, dicom_factory(phi=True, **attrs))
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert "burned-in annotation" in error["message"] and reason in error["message"]
    assert error["details"] == {"reason": "burned_in_annotation"}
    assert "Doe" not in r.text
    assert medical_client.get("/v1/medical/studies", headers=headers).json()["studies"] == []
    assert not list((verticals_home / "medical" / "studies").glob("*/image.dcm"))


@pytest.mark.usefixtures("opt_in")
def test_a_deployment_can_opt_in_to_burned_in_images(medical_client, auth, dicom_factory):
    headers = auth()
    for attrs in ({"BurnedInAnnotation": "YES"}, {"BurnedInAnnotation": None}):
        r = _post(medical_client, headers, dicom_factory(**attrs))
        assert r.status_code == 201, r.text


def test_images_declared_clean_and_raster_uploads_are_accepted(
    medical_client, auth, dicom_factory, png_factory
):
    headers = auth()
    clean_ct = dicom_factory(BurnedInAnnotation=None, SOPClassUID=CTImageStorage)
    assert _post(medical_client, headers, clean_ct).status_code == 201
    gray = np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))
    for fmt, name in (("PNG", "x.png"), ("JPEG", "x.jpg")):  # wrapped by us into an SC
        r = medical_client.post(
            "/v1/medical/studies",
            files={"file": (name, png_factory(gray, fmt))},
            data={"task": "pneumonia"},
            headers=headers,
        )
        assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    "path", sorted(_demo_dir().glob("*/*.dcm")), ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_demo_dicoms_upload(medical_client, auth, path):
    r = _post(medical_client, auth(), path.read_bytes(), path.name)
    assert r.status_code == 201, r.text


# --------------------------------------------------------------------------- error messages


def _corrupt_vr(data: bytes, group: int, element: int) -> bytes:
    """``data`` with the explicit VR of element (group, element) replaced by an unknown one."""
    at = data.find(bytes([group & 0xFF, group >> 8, element & 0xFF, element >> 8]), 132)
    out = bytearray(data)
    out[at + 4 : at + 6] = b"Qq"
    return bytes(out)


def test_decoder_errors_never_quote_header_values(medical_client, auth, dicom_factory):
    # pydicom's message was "Unknown (0028,0004) 'Photometric Interpretation' value 'DOE JANE'"
    r = _post(medical_client, auth(), dicom_factory(PhotometricInterpretation="DOE JANE"))
    assert r.status_code in (415, 422), r.text
    assert "DOE" not in r.text.upper() and "cannot be decoded" in r.json()["error"]["message"]


def test_routing_refusal_lists_the_tasks_not_the_header(medical_client, auth, dicom_factory):
    r = medical_client.post(
        "/v1/medical/studies",
        files={"file": ("x.dcm", dicom_factory(body_part="DOE^JANE 1970"))},
        headers=auth(),
    )
    assert r.status_code == 422, r.text
    assert "DOE" not in r.text.upper() and "1970" not in r.text
    assert "accepted" in r.json()["error"]["message"]
    assert "pneumonia" in r.json()["error"]["details"]["tasks"]


def test_zip_errors_never_quote_member_names(medical_client, auth, dicom_factory):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("DOE_JANE_19700214/IM0001.dcm", dicom_factory())
    crc = bytearray(buffer.getvalue())
    crc[crc.find(b"\xe0\x7f\x10\x00") + 20] ^= 0xFF  # a pixel byte: "Bad CRC-32 for file '...'"
    renamed = bytearray(buffer.getvalue())
    renamed[renamed.find(b"DOE_JANE")] = ord("X")  # local and central names differ
    for data in (crc, renamed):
        r = medical_client.post(
            "/v1/medical/studies",
            files={"file": ("s.zip", bytes(data))},
            data={"task": "pneumonia"},
            headers=auth(),
        )
        assert r.status_code == 422, r.text
        assert "JANE" not in r.text and "1970" not in r.text


@pytest.mark.parametrize(
    "tag",
    [(0x0008, 0x0060), (0x0018, 0x0015), (0x0028, 0x0004), (0x0028, 0x0101), (0x0028, 0x1050)],
)
@pytest.mark.parametrize("task", ["pneumonia", None])
def test_a_corrupt_element_is_422_not_500(medical_client, auth, dicom_factory, tag, task):
    data = _corrupt_vr(dicom_factory(phi=True, WindowCenter="2000", WindowWidth="4000"), *tag)
    r = medical_client.post(
        "/v1/medical/studies",
        files={"file": ("x.dcm", data)},
        data={"task": task} if task else {},
        headers=auth(),
    )
    assert r.status_code == 422, r.text
    assert "Doe" not in r.text
