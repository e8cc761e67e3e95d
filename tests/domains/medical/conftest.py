"""Fixtures for the medical domain: a fake classifier and DICOM builders (with and without PHI).

The fake model stands in for ``verticals.domains.medical.model`` so these tests check the
imaging, privacy and API layers on their own.
"""

from __future__ import annotations

import datetime
import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pytest
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

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
    """A valid uncompressed DICOM image; ``phi=True`` fills it with identifying data.

    ``BurnedInAnnotation`` is ``NO`` unless ``attrs`` says otherwise (``None`` leaves it empty).
    """
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
    ds.BurnedInAnnotation = "NO"  # a Secondary Capture must say so, or it is refused (422)
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


# ---------------------------------------------------------------- the whole profile, planted
#
# Every attribute of the library's PS3.15 Table E.1-1 gets a distinctive value of a valid form
# for its VR, at the top level and again inside an item of a sequence the table does not list.
# A sequence attribute gets one item holding a comment (X in the table), a referenced SOP
# instance UID (U) and a code (not listed: kept, unless the sequence's action is D).

PROFILE_NEST = "SharedFunctionalGroupsSequence"  # not in the table: kept, its items cleaned
_UID_PREFIX = "1.2.826.0.1.3680043.99"
_BASE_DATE = datetime.date(1950, 1, 1)


@dataclass
class Planted:
    tag: int
    keyword: str  # "" where pydicom's dictionary does not know the tag (planted as UN)
    vr: str
    category: str  # the library's list: "X_TAGS", "Z_D_TAGS", ...
    nested: bool
    value: object
    token: str | None  # the value's text where it can be searched for; None for numbers
    comment: str | None = None  # SQ: in its item; must never survive
    ref_uid: str | None = None  # SQ: in its item; must be replaced wherever the item survives
    code_value: str | None = None  # SQ: in its item; kept unless the sequence is dummied
    code_meaning: str | None = None


def profile_entries() -> list[tuple[int, str]]:
    """(tag, list name) for every single-attribute entry of the library's table."""
    from dicomanonymizer.dicomfields_selector import (
        ANONYMIZATION_CATEGORIES,
        dicom_anonymization_database_selector,
    )
    from verticals.domains.medical.deid import PROFILE_EDITION

    lists = dicom_anonymization_database_selector(PROFILE_EDITION)
    entries = []
    for name in ANONYMIZATION_CATEGORIES:
        if name == "ALL_TAGS":
            continue
        entries.extend(((e[0] << 16) | e[1], name) for e in lists[name] if len(e) == 2)
    return entries


def _token(kind: str, tag: int) -> str:
    return f"P{kind}{tag:08X}"  # ten characters, valid for CS/AE/SH and every text VR


def _planted_value(vr: str, tag: int, kind: str, serial: int) -> tuple[object, str | None]:
    token = _token(kind, tag)
    day = _BASE_DATE + datetime.timedelta(days=serial)
    clock = f"{(serial // 3600) % 24:02d}{(serial // 60) % 60:02d}{serial % 60:02d}"
    if vr in ("AE", "CS", "LO", "SH", "LT", "ST", "UT", "UC"):
        return token, token
    if vr == "PN":
        return f"{token}^Plantina", token
    if vr == "UI":
        uid = f"{_UID_PREFIX}.{ord(kind)}.{serial}"
        return uid, uid
    if vr == "DA":
        value = day.strftime("%Y%m%d")
        return value, value
    if vr == "TM":
        value = f"{clock}.{serial:06d}"
        return value, value
    if vr == "DT":
        value = f"{day.strftime('%Y%m%d')}{clock}.{serial:06d}"
        return value, value
    if vr == "UR":
        return f"http://plant.invalid/{token}", token
    if vr in ("OB", "OW", "UN", "OD", "OF", "OL", "OV"):
        return (token + "______").encode(), token  # 16 bytes: a whole value for every VR
    if vr == "AS":
        return f"{serial % 1000:03d}Y", None
    if vr == "DS":
        return f"{serial}.5", None
    if vr == "IS":
        return str(serial + 1000), None
    if vr in ("US", "SS"):
        return serial % 30000 + 1, None
    if vr in ("UL", "SL", "UV", "SV"):
        return serial + 100000, None
    if vr in ("FL", "FD"):
        return serial + 0.25, None
    raise AssertionError(f"no planted value for VR {vr}")


def plant_profile(ds: Dataset, *, skip: Iterable[int] = ()) -> list[Planted]:
    """Plant every table attribute into ``ds`` (top level and nested); what was planted where.

    ``skip``: tags left as they are at the top level (they are still planted nested).
    """
    skipped = set(skip)
    nest = Dataset()
    planted: list[Planted] = []
    serial = 0
    for nested, target in ((False, ds), (True, nest)):
        for tag, category in profile_entries():
            if tag >> 16 == 0x0002:  # file meta: planted below, top level only
                continue
            if tag >> 16 == 0x0000 and not nested:  # command elements: not in a file's body
                continue
            if tag in skipped and not nested:  # keep what the caller set at the top level
                continue
            serial += 1
            keyword = keyword_for_tag(tag)
            vr = dictionary_VR(tag).split(" or ")[0] if keyword else "UN"
            kind = "N" if nested else "T"
            if vr == "SQ":
                item = Dataset()
                record = Planted(tag, keyword, vr, category, nested, None, None)
                record.comment = _token("B" if nested else "A", tag)
                record.ref_uid = f"{_UID_PREFIX}.{ord('R') + nested}.{serial}"
                record.code_value = _token("W" if nested else "V", tag)
                record.code_meaning = _token("L" if nested else "K", tag)
                item.PatientComments = record.comment
                item.ReferencedSOPClassUID = CTImageStorage
                item.ReferencedSOPInstanceUID = record.ref_uid
                item.CodeValue = record.code_value
                item.CodingSchemeDesignator = "99PLANT"
                item.CodeMeaning = record.code_meaning
                record.value = Sequence([item])
                target.add_new(tag, vr, Sequence([item]))
                planted.append(record)
                continue
            value, token = _planted_value(vr, tag, kind, serial)
            target.add_new(tag, vr, value)
            planted.append(Planted(tag, keyword, vr, category, nested, value, token))
    setattr(ds, PROFILE_NEST, Sequence([nest]))
    if "SOPInstanceUID" in ds:  # a real file's meta repeats its SOP instance UID
        meta = getattr(ds, "file_meta", None) or FileMetaDataset()
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta = meta
        uid = str(ds.SOPInstanceUID)
        planted.append(
            Planted(0x00020003, "MediaStorageSOPInstanceUID", "UI", "U_TAGS", False, uid, uid)
        )
    return planted


def must_vanish(planted: Iterable[Planted]) -> list[str]:
    """Every planted string that no output may contain (codes inside kept sequences excepted)."""
    values: list[str] = []
    for record in planted:
        if record.token:
            values.append(record.token)
        if record.vr == "SQ":
            values += [record.comment, record.ref_uid]
            if record.category != "X_Z_U_STAR_TAGS":  # U*: the items are kept as they are
                values += [record.code_value, record.code_meaning]
    return [v for v in values if v]


def find_leaks(blob: str | bytes, values: Iterable[str]) -> list[str]:
    """The values found in ``blob`` (one pass per kind of value, not one per value).

    A value of digits and dots only (a date, a time, a UID) counts where it starts a number, not
    inside one (a new ``2.25.<digits>`` UID may hold any eight digits). It may run on into a
    digit: in a DICOM file the next tag's bytes can read as one.
    """
    text = blob.decode("latin-1") if isinstance(blob, bytes) else blob
    values = set(values)
    tokens = {v for v in values if _TOKEN.fullmatch(v)}
    numbers = {v for v in values if _NUMBER.fullmatch(v)}
    leaks = tokens.intersection(_TOKEN.findall(text))
    lengths = sorted({len(v) for v in numbers})
    for run in _NUMBER_RUN.findall(text):
        leaks.update(run[:n] for n in lengths if run[:n] in numbers)
    leaks.update(v for v in values - tokens - numbers if v in text)
    return sorted(leaks)


_TOKEN = re.compile(r"P[A-Z][0-9A-F]{8}")  # what ``_token`` makes
_NUMBER = re.compile(r"[0-9.]+")
_NUMBER_RUN = re.compile(r"(?<![0-9.])[0-9][0-9.]*")


@pytest.fixture
def profile() -> SimpleNamespace:
    """The planting helpers above, for tests (a conftest is not importable as a module)."""
    return SimpleNamespace(
        nest=PROFILE_NEST,
        entries=profile_entries,
        plant=plant_profile,
        must_vanish=must_vanish,
        find_leaks=find_leaks,
    )
