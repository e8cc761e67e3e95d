"""PS3.15 basic-profile de-identification of a dataset."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from verticals.domains.medical.deid import TAG_ACTIONS, UIDMapper, deidentify, load_key

KEY = b"k" * 32


def _all_text(ds: Dataset) -> str:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue().decode("latin-1")


def test_basic_profile_removes_identifiers(dataset_factory, phi_values):
    ds = dataset_factory(phi=True)
    original_uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    deidentify(ds, UIDMapper(KEY))
    text = _all_text(ds)
    for value in phi_values:
        assert value not in text, value
    assert str(ds.PatientName) == "ANONYMOUS^" and ds.PatientID == "ANON"
    assert ds.PatientBirthDate == "" and ds.StudyDate == "" and ds.AccessionNumber == ""
    for keyword in (
        "InstitutionName",
        "PatientAddress",
        "OtherPatientNames",
        "OtherPatientIDsSequence",
        "StudyDescription",
    ):
        assert keyword not in ds, keyword
    assert not any(elem.tag.is_private for elem in ds)
    assert ds.AnatomicRegionSequence[0].CodeMeaning == "Chest"  # clinical content kept
    assert ds.AnatomicRegionSequence[0].ConsultingPhysicianName == ""  # PN emptied in items
    new_uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    assert all(
        a != b and b.startswith("2.25.") for a, b in zip(original_uids, new_uids, strict=True)
    )
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert ds.Modality == "CR" and ds.BodyPartExamined == "CHEST"  # routing still works
    np.testing.assert_array_equal(ds.pixel_array, dataset_factory(phi=True).pixel_array)


def test_uid_mapping_is_consistent_and_keyed(dataset_factory):
    a, b = dataset_factory(phi=True), dataset_factory(phi=True)
    deidentify(a, UIDMapper(KEY))
    deidentify(b, UIDMapper(KEY))
    assert a.StudyInstanceUID == b.StudyInstanceUID  # same study stays one study
    c = dataset_factory(phi=True)
    deidentify(c, UIDMapper(b"z" * 32))
    assert c.StudyInstanceUID != a.StudyInstanceUID  # unguessable without the key
    assert pydicom.uid.UID(a.StudyInstanceUID).is_valid


def test_standard_uids_are_kept_and_overlays_removed(dataset_factory):
    ds = dataset_factory()
    ref = Dataset()
    ref.ReferencedSOPClassUID = pydicom.uid.CTImageStorage
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5"
    ds.ReferencedImageSequence = Sequence([ref])  # X in the table: removed entirely
    ds.add_new(0x60000010, "US", 4)
    ds.add_new(0x60003000, "OW", b"\x00" * 8)
    ds.add_new(0x60004000, "LT", "overlay comment naming a patient")
    ds.add_new(0x50000005, "US", 1)
    deidentify(ds, UIDMapper(KEY))
    assert "ReferencedImageSequence" not in ds
    assert 0x60003000 not in ds and 0x60004000 not in ds and 0x50000005 not in ds
    assert ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage


def test_missing_identity_is_filled(dataset_factory):
    ds = dataset_factory()
    del ds.StudyInstanceUID, ds.Modality
    deidentify(ds, UIDMapper(KEY))
    assert ds.StudyInstanceUID.startswith("2.25.") and ds.Modality == "OT"


def test_profile_table_is_broad():
    actions = set(TAG_ACTIONS.values())
    assert actions == {"X", "Z", "D", "U"}
    assert len(TAG_ACTIONS) > 200


def test_key_file_is_private(tmp_path):
    path = tmp_path / "medical" / "deid.key"
    key = load_key(path)
    assert len(key) == 32 and load_key(path) == key
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(ValueError):
        UIDMapper(b"short")
