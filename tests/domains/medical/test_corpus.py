"""pydicom's bundled test files, uploaded through the API: never a 5xx.

The default suite uploads a representative subset (every transfer syntax, colour models,
broken files); ``-m slow`` uploads every file in the folder.
"""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

pytestmark = pytest.mark.usefixtures("fake_models", "accept_burned_in")


@pytest.fixture
def accept_burned_in(monkeypatch):
    """The corpus is mostly Secondary Captures without BurnedInAnnotation=NO, which a default
    deployment refuses (422, see test_privacy); opting in sends them through de-identification
    and storage too, which is what this test is for."""
    from verticals.domains.medical.settings import reset_medical_settings

    monkeypatch.setenv("VERTICALS_MEDICAL_REJECT_BURNED_IN_ANNOTATION", "false")
    reset_medical_settings()
    yield
    monkeypatch.delenv("VERTICALS_MEDICAL_REJECT_BURNED_IN_ANNOTATION")
    reset_medical_settings()

DATA = Path(pydicom.__file__).parent / "data"  # test_files/, charset_files/, palettes/...
TEST_FILES = DATA / "test_files"
ALL_FILES = sorted(
    p
    for p in DATA.rglob("*")
    if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".py", ".pyc")
)
SUBSET = [
    "CT_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "SC_rgb_jpeg_gdcm.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "JPEG2000.dcm",
    "JPGExtended.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
    "examples_palette.dcm",
    "image_dfl.dcm",
    "MR_small_bigendian.dcm",
    "MR_truncated.dcm",
    "rtplan.dcm",
    "badVR.dcm",
    "no_meta.dcm",
    "emri_small.dcm",
    "liver.dcm",
    "zipMR.gz",
    "crayons.icc",
    "rtplan.dump",
]


def _upload_all(client, headers, paths) -> dict[str, int]:
    statuses = {}
    for path in paths:
        response = client.post(
            "/v1/medical/studies",
            files={"file": (path.name, path.read_bytes())},
            data={"task": "pneumonia"},
            headers=headers,
        )
        statuses[str(path.relative_to(DATA))] = response.status_code
        assert response.status_code < 500, (path.name, response.text)
        if response.status_code >= 400:
            assert response.json()["error"]["message"]
    return statuses


def test_subset_of_pydicom_test_files(medical_client, auth):
    paths = [TEST_FILES / n for n in SUBSET if (TEST_FILES / n).is_file()]
    assert len(paths) >= 15
    statuses = _upload_all(medical_client, auth(), paths)
    assert statuses["test_files/MR_small_jp2klossless.dcm"] == 201
    assert statuses["test_files/SC_rgb_jpeg_gdcm.dcm"] == 201
    assert statuses["test_files/rtplan.dcm"] == 422
    assert statuses["test_files/JPGExtended.dcm"] == 415  # GPL decoder not installed by default
    refused = medical_client.post(
        "/v1/medical/studies",
        files={"file": ("x.dcm", (TEST_FILES / "JPGExtended.dcm").read_bytes())},
        data={"task": "pneumonia"},
        headers=auth(),
    )
    assert "dicom-gpl" in refused.json()["error"]["details"]["hint"]


def test_every_pydicom_test_file(medical_client, auth):
    statuses = _upload_all(medical_client, auth(), ALL_FILES)
    assert len(statuses) == len(ALL_FILES) > 200
    counts = {code: list(statuses.values()).count(code) for code in set(statuses.values())}
    print(f"pydicom corpus: {len(statuses)} files, status counts {dict(sorted(counts.items()))}")
    assert counts.get(201, 0) >= 95
