"""Fixtures for the medical domain: a fake classifier and DICOM builders (with and without PHI).

The fake model stands in for ``verticals.domains.medical.model`` so these tests check the
imaging, privacy and API layers on their own.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

PHI = {
    "PatientName": "Doe^Jane^Q",
    "PatientID": "PHI-PID-7731",
    "PatientBirthDate": "19700214",
    "InstitutionName": "Saint Example Hospital",
    "ReferringPhysicianName": "Smith^Johnathan",
    "AccessionNumber": "ACC99881",
    "PatientAddress": "12 Privet Drive Littlewhinging",
    "OtherPatientName": "Roe^Janet",
    "PrivateText": "private-Doe-Jane-note",
    "ConsultingName": "Consulto^Maria",
    "StudyUID": "1.2.826.0.1.3680043.99.1.123456",
}
PHI_VALUES = [
    "Doe^Jane",
    "Doe",
    "PHI-PID-7731",
    "19700214",
    "Saint Example",
    "Smith^Johnathan",
    "Johnathan",
    "ACC99881",
    "Privet",
    "Roe^Janet",
    "private-Doe-Jane",
    "Consulto",
    "1.2.826.0.1.3680043.99.1.123456",
]


@dataclass(frozen=True)
class FakeSpec:
    name: str
    labels: list[str]
    positive_label: str
    input_size: int
    modalities: frozenset[str]
    body_parts: frozenset[str]


FAKE_TASKS = {
    "pneumonia": FakeSpec(
        "pneumonia",
        ["normal", "pneumonia"],
        "pneumonia",
        28,
        frozenset({"CR", "DX"}),
        frozenset({"CHEST"}),
    ),
    "breast": FakeSpec(
        "breast",
        ["malignant", "normal_or_benign"],
        "malignant",
        28,
        frozenset({"US"}),
        frozenset({"BREAST"}),
    ),
}


@dataclass
class FakeClassifier:
    """Probability = mean intensity; Grad-CAM = the image itself. Records batch sizes."""

    task: str
    version: str = "fake-1"
    input_size: int = 28
    threshold: float = 0.5
    ood: float | None = 0.5  # what ood_score answers: in distribution unless a test says not
    batches: list[int] = field(default_factory=list)

    def ood_score(self, image: np.ndarray) -> float | None:
        return self.ood

    def predict(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        assert images.ndim == 4 and images.shape[1] == 1
        assert images.shape[-2:] == (self.input_size, self.input_size)
        assert images.dtype == np.float32 and images.min() >= 0 and images.max() <= 1
        self.batches.append(len(images))
        return images.reshape(len(images), -1).mean(axis=1).astype(np.float32)

    def gradcam(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image)
        assert image.shape == (1, self.input_size, self.input_size)
        return image[0].astype(np.float32)


@pytest.fixture
def fake_models(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeClassifier]:
    from verticals.domains.medical import model_api

    classifiers = {task: FakeClassifier(task) for task in FAKE_TASKS}
    monkeypatch.setattr(model_api, "tasks", lambda: FAKE_TASKS)
    monkeypatch.setattr(model_api, "load_classifier", lambda task: classifiers[task])
    monkeypatch.setattr(
        model_api, "ensure_production_models", lambda: {t: "fake-1" for t in FAKE_TASKS}
    )
    return classifiers


@pytest.fixture
def medical_client(fake_models, client):
    """The whole app (lifespan run) with the fake classifiers in place."""
    return client


@pytest.fixture
def auth(make_key) -> Callable[..., dict[str, str]]:
    def headers(*scopes: str) -> dict[str, str]:
        key = make_key(list(scopes) or ["medical:read", "medical:write"])
        return {"Authorization": f"Bearer {key}"}

    return headers


def dicom_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def make_dataset(
    pixels: np.ndarray | None = None,
    *,
    modality: str = "CR",
    body_part: str | None = "CHEST",
    photometric: str = "MONOCHROME2",
    phi: bool = False,
    bits: int = 16,
    frames: int = 1,
    **attrs: object,
) -> Dataset:
    """A valid uncompressed DICOM image; ``phi=True`` fills it with identifying data."""
    rng = np.random.default_rng(0)
    if pixels is None:
        shape = (frames, 40, 64) if frames > 1 else (40, 64)
        pixels = rng.integers(0, 4000 if bits == 16 else 250, size=shape)
    dtype = np.uint16 if bits == 16 else np.uint8
    pixels = np.asarray(pixels).astype(dtype)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = PHI["StudyUID"] if phi else generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    if body_part:
        ds.BodyPartExamined = body_part
    ds.PatientName = PHI["PatientName"] if phi else "Test^Synthetic"
    ds.PatientID = PHI["PatientID"] if phi else "SYN-1"
    if phi:
        ds.PatientBirthDate = PHI["PatientBirthDate"]
        ds.InstitutionName = PHI["InstitutionName"]
        ds.ReferringPhysicianName = PHI["ReferringPhysicianName"]
        ds.AccessionNumber = PHI["AccessionNumber"]
        ds.PatientAddress = PHI["PatientAddress"]
        ds.OtherPatientNames = PHI["OtherPatientName"]
        ds.ConsultingPhysicianName = PHI["ConsultingName"]
        ds.StudyDate = "20240102"
        ds.StudyDescription = "Chest for Doe Jane"
        other = Dataset()
        other.PatientID = "PHI-PID-7731-B"
        ds.OtherPatientIDsSequence = Sequence([other])
        item = Dataset()
        item.CodeValue = "T-D3000"
        item.CodingSchemeDesignator = "SRT"
        item.CodeMeaning = "Chest"
        item.ConsultingPhysicianName = PHI["ConsultingName"]
        ds.AnatomicRegionSequence = Sequence([item])
        block = ds.private_block(0x0011, "ACME PHI", create=True)
        block.add_new(0x01, "LO", PHI["PrivateText"])
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = pixels.shape[-2:]
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.BitsAllocated = bits
    ds.BitsStored = 12 if bits == 16 else 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


@pytest.fixture
def dicom_factory() -> Callable[..., bytes]:
    def build(**kwargs: object) -> bytes:
        return dicom_bytes(make_dataset(**kwargs))

    return build


def png_bytes(array: np.ndarray, fmt: str = "PNG") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def dataset_factory() -> Callable[..., Dataset]:
    return make_dataset


@pytest.fixture
def to_bytes() -> Callable[[Dataset], bytes]:
    return dicom_bytes


@pytest.fixture
def png_factory() -> Callable[..., bytes]:
    return png_bytes


@pytest.fixture
def phi_values() -> list[str]:
    return list(PHI_VALUES)
