"""PS3.15 basic-profile de-identification of a dataset, attribute by attribute."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, MRImageStorage, SecondaryCaptureImageStorage
from verticals.core.errors import InvalidInput
from verticals.domains.medical import deid
from verticals.domains.medical.deid import (
    RANGE_ACTIONS,
    STANDARD_ACTIONS,
    TAG_ACTIONS,
    UIDMapper,
    burned_in_reason,
    deidentify,
    load_key,
    refuse_burned_in,
)
from verticals.domains.medical.settings import reset_medical_settings

KEY = b"k" * 32
DEMO = Path(deid.__file__).parent / "demo"

# What each of the library's lists must become (the compound actions as the module resolves them).
OUTCOME = {
    "X_TAGS": "X",
    "Z_TAGS": "Z",
    "D_TAGS": "D",
    "U_TAGS": "U",
    "Z_D_TAGS": "D",
    "X_Z_TAGS": "Z",
    "X_D_TAGS": "D",
    "X_Z_D_TAGS": "D",
    "X_Z_U_STAR_TAGS": "U*",
}
TEXT_DUMMY = "ANON"
DUMMIES: dict[str, object] = {
    "PN": "ANONYMOUS^",
    **dict.fromkeys(("AE", "CS", "LO", "SH", "LT", "ST", "UT", "UC"), TEXT_DUMMY),
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "AS": "000Y",
    "UR": "http://anonymized.invalid",
    **dict.fromkeys(("OB", "OW", "UN"), b"\x00" * 8),
}


def _bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _all_text(ds: Dataset) -> str:
    return _bytes(ds).decode("latin-1")


def _round_trip(ds: Dataset, mapper: UIDMapper) -> Dataset:
    """Written, read, de-identified, written and read again: the stored file's view."""
    source = pydicom.dcmread(io.BytesIO(_bytes(ds)))
    return pydicom.dcmread(io.BytesIO(_bytes(deidentify(source, mapper))))


def _check(record, container: Dataset, mapper: UIDMapper) -> str:
    """Assert the attribute's outcome in ``container``; return its name for the tally."""
    action = OUTCOME[record.category]
    name = f"{record.keyword or hex(record.tag)} ({record.category}, nested={record.nested})"
    if action == "X":
        assert record.tag not in container, name
        return "removed"
    assert record.tag in container, name
    elem = container[record.tag]
    value = elem.value
    if record.vr == "SQ":
        if action == "Z":
            assert len(value) == 0, name
            return "emptied"
        assert len(value) == 1, name
        item = value[0]
        assert "PatientComments" not in item, name  # X inside every kept item
        assert item.ReferencedSOPInstanceUID == mapper(record.ref_uid), name
        assert item.ReferencedSOPClassUID == CTImageStorage, name  # a standard UID stays
        if action == "D":
            assert (item.CodeValue, item.CodeMeaning) == (TEXT_DUMMY, TEXT_DUMMY), name
            return "dummy"
        assert (item.CodeValue, item.CodeMeaning) == (record.code_value, record.code_meaning)
        return "kept, items cleaned"
    if action == "U" or (action == "D" and record.vr == "UI"):
        assert value == mapper(record.value) and value != record.value, name
        return "UID remapped"
    if action == "Z":
        if record.keyword == "PatientName" and not record.nested:
            assert str(value) == deid.DUMMY_NAME  # Z allows a dummy; the SR needs a name
            return "dummy"
        assert elem.is_empty, name
        return "emptied"
    assert action == "D", name
    shown = str(value) if record.vr == "PN" else value
    assert shown == DUMMIES[record.vr] and shown != record.value, name
    return "dummy"


def test_every_attribute_of_the_profile_table(dataset_factory, profile):
    ds = dataset_factory()
    planted = profile.plant(ds)
    mapper = UIDMapper(KEY)
    out = _round_trip(ds, mapper)

    nest = out[profile.nest][0]
    tally: Counter[tuple[str, str]] = Counter()
    known = unknown = 0
    for record in planted:
        container = out.file_meta if record.tag >> 16 == 2 else nest if record.nested else out
        outcome = _check(record, container, mapper)
        tally[(outcome, "nested" if record.nested else "top")] += 1
        if record.keyword:
            known += 1
        else:
            unknown += 1

    entries = profile.entries()
    known_tags = {tag for tag, _ in entries if pydicom.datadict.keyword_for_tag(tag)}
    command = {tag for tag in known_tags if tag >> 16 == 0}  # nested only: a body has none
    assert known == 2 * len(known_tags) - 1 - len(command)  # twice each; file meta once
    assert unknown == 2 * (len(entries) - len(known_tags))
    assert profile.find_leaks(_bytes(out), profile.must_vanish(planted)) == []
    print(f"\nprofile attributes checked: {known} known + {unknown} unknown to pydicom")
    for (outcome, where), count in sorted(tally.items()):
        print(f"  {outcome:22s} {where:6s} {count}")
    assert tally[("removed", "top")] > 400 and tally[("dummy", "nested")] > 100


def test_table_is_the_librarys_whole_table():
    from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector

    lists = dicom_anonymization_database_selector(deid.PROFILE_EDITION)
    assert len(STANDARD_ACTIONS) + len(RANGE_ACTIONS) == len(lists["ALL_TAGS"]) >= 650
    assert set(TAG_ACTIONS.values()) == {"X", "Z", "D", "U", "U*"}
    for keyword, action in {
        "OtherPatientIDs": "X",
        "ClinicalTrialSubjectID": "D",
        "ClinicalTrialSubjectReadingID": "D",
        "ClinicalTrialSponsorName": "D",
        "PatientID": "Z/D",
        "InstitutionName": "X/Z/D",
    }.items():
        assert STANDARD_ACTIONS[pydicom.datadict.tag_for_keyword(keyword)] == action, keyword
    # the repeating groups the table lists (50xx curves, 60xx overlay data and comments) are
    # inside the groups the module removes whole
    for group, _element, group_mask, _element_mask, _action in RANGE_ACTIONS:
        matching = [g for g in range(0x10000) if g & group_mask == group & group_mask]
        assert all(0x5000 <= g <= 0x50FF or 0x6000 <= g <= 0x60FF for g in matching)


def test_private_curves_and_overlays_are_removed_at_any_depth(dataset_factory):
    ds = dataset_factory()
    inner = Dataset()
    inner.CodeMeaning = "kept"
    for target in (ds, inner):
        target.add_new(0x50000005, "US", 1)
        target.add_new(0x50003000, "OB", b"curve-data")
        target.add_new(0x60000010, "US", 4)
        target.add_new(0x60020022, "LO", "overlay description naming a patient")
        target.add_new(0x60004000, "LT", "overlay comment naming a patient")
        block = target.private_block(0x0009, "ACME", create=True)
        block.add_new(0x01, "LO", "private-note-naming-a-patient")
    ds.AnatomicRegionSequence = Sequence([inner])
    out = _round_trip(ds, UIDMapper(KEY))
    for container in (out, out.AnatomicRegionSequence[0]):
        groups = {elem.tag.group for elem in container}
        assert not any(g & 1 or 0x5000 <= g <= 0x50FF or 0x6000 <= g <= 0x60FF for g in groups)
    assert out.AnatomicRegionSequence[0].CodeMeaning == "kept"
    assert "naming a patient" not in _all_text(out)


def test_basic_profile_removes_identifiers(dataset_factory, phi_values):
    ds = dataset_factory(phi=True)
    original_uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    deidentify(ds, UIDMapper(KEY))
    text = _all_text(ds)
    for value in phi_values:
        assert value not in text, value
    assert str(ds.PatientName) == "ANONYMOUS^" and ds.PatientID == "ANON"
    assert ds.PatientBirthDate == "" and ds.StudyDate == "" and ds.AccessionNumber == ""
    assert ds.InstitutionName == "ANON"  # X/Z/D: the dummy keeps any IOD valid
    for keyword in ("PatientAddress", "OtherPatientNames", "OtherPatientIDsSequence"):
        assert keyword not in ds, keyword
    assert "StudyDescription" not in ds
    assert not any(elem.tag.is_private for elem in ds)
    assert ds.AnatomicRegionSequence[0].CodeMeaning == "Chest"  # clinical content kept
    assert ds.AnatomicRegionSequence[0].ConsultingPhysicianName == ""  # Z in items too
    new_uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    assert all(
        a != b and b.startswith("2.25.") for a, b in zip(original_uids, new_uids, strict=True)
    )
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.PatientIdentityRemoved == "YES"
    assert ds.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert ds.DeidentificationMethodCodeSequence[0].CodingSchemeDesignator == "DCM"
    assert ds.LongitudinalTemporalInformationModified == "REMOVED"
    assert len(ds.DeidentificationMethod) <= 64
    assert ds.Modality == "CR" and ds.BodyPartExamined == "CHEST"  # routing still works
    np.testing.assert_array_equal(ds.pixel_array, dataset_factory(phi=True).pixel_array)


def test_dates_follow_the_profile_and_unlisted_dates_are_emptied(dataset_factory):
    ds = dataset_factory()
    ds.StudyDate, ds.SeriesDate, ds.ContentDate = "20240102", "20240102", "20240102"
    ds.AcquisitionDateTime = "20240102101010"
    ds.ExpiryDate = "20300101"  # (0014,1020): not in the table
    ds.StudyUpdateDateTime = "20240103101010"  # not in the table
    deidentify(ds, UIDMapper(KEY))
    assert ds.StudyDate == ""  # Z
    assert "SeriesDate" in ds and ds.SeriesDate == "19000101"  # X/D → D
    assert ds.ContentDate == "19000101"  # Z/D → D
    assert ds.AcquisitionDateTime == "19000101000000"  # X/Z/D → D
    assert ds.ExpiryDate == "" and ds.StudyUpdateDateTime == ""
    assert "20240102" not in _all_text(ds) and "2030" not in _all_text(ds)


def test_file_meta_is_rebuilt(dataset_factory):
    ds = dataset_factory()
    ds.file_meta.SourceApplicationEntityTitle = "HOSPITAL_PACS"
    ds.file_meta.ImplementationVersionName = "SITE_A_V1"
    ds.file_meta.PrivateInformationCreatorUID = "1.2.3.4"
    ds.file_meta.PrivateInformation = b"secret"
    ds.preamble = b"HOSPITAL" * 16
    deidentify(ds, UIDMapper(KEY))
    assert set(ds.file_meta.keys()) == {0x00020002, 0x00020003, 0x00020010}
    assert ds.preamble == b"\x00" * 128
    assert "HOSPITAL" not in _all_text(ds) and "SITE_A" not in _all_text(ds)


def test_uid_mapping_is_consistent_and_keyed(dataset_factory):
    a, b = dataset_factory(phi=True), dataset_factory(phi=True)
    deidentify(a, UIDMapper(KEY))
    deidentify(b, UIDMapper(KEY))
    assert a.StudyInstanceUID == b.StudyInstanceUID  # same study stays one study
    c = dataset_factory(phi=True)
    deidentify(c, UIDMapper(b"z" * 32))
    assert c.StudyInstanceUID != a.StudyInstanceUID  # unguessable without the key
    assert pydicom.uid.UID(a.StudyInstanceUID).is_valid


def test_referenced_images_keep_their_structure_with_new_uids(dataset_factory):
    ds = dataset_factory()
    ref = Dataset()
    ref.ReferencedSOPClassUID = CTImageStorage
    ref.ReferencedSOPInstanceUID = "1.2.3.4.5"
    ds.ReferencedImageSequence = Sequence([ref])  # X/Z/U*: kept, contained UIDs replaced
    ds.CodingSchemeUID = "1.2.3.99.7"  # not in the table, not a standard UID: mapped
    deidentify(ds, UIDMapper(KEY))
    item = ds.ReferencedImageSequence[0]
    assert item.ReferencedSOPClassUID == CTImageStorage
    assert item.ReferencedSOPInstanceUID == UIDMapper(KEY)("1.2.3.4.5")
    assert ds.CodingSchemeUID == UIDMapper(KEY)("1.2.3.99.7")
    assert ds.SOPClassUID == SecondaryCaptureImageStorage


def test_missing_identity_is_filled(dataset_factory):
    ds = dataset_factory()
    del ds.StudyInstanceUID, ds.Modality
    deidentify(ds, UIDMapper(KEY))
    assert ds.StudyInstanceUID.startswith("2.25.") and ds.Modality == "OT"


def test_key_file_is_private(tmp_path):
    path = tmp_path / "medical" / "deid.key"
    key = load_key(path)
    assert len(key) == 32 and load_key(path) == key
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(ValueError):
        UIDMapper(b"short")


# ---------------------------------------------------------------- burned-in annotation


@pytest.mark.parametrize(
    ("attrs", "reason"),
    [
        ({"BurnedInAnnotation": "YES"}, "BurnedInAnnotation=YES"),
        ({"BurnedInAnnotation": None}, "Secondary Capture SOP class"),
        ({"BurnedInAnnotation": "NO"}, None),
        ({"BurnedInAnnotation": None, "SOPClassUID": CTImageStorage}, None),
        (
            {"BurnedInAnnotation": None, "SOPClassUID": CTImageStorage, "ConversionType": "WSD"},
            "ConversionType",
        ),
        (
            {
                "BurnedInAnnotation": None,
                "SOPClassUID": CTImageStorage,
                "ImageType": ["DERIVED", "SECONDARY", "SCREEN SAVE"],
            },
            "screen capture",
        ),
        (  # a reformatted MR series is DERIVED\SECONDARY: not a capture
            {
                "BurnedInAnnotation": None,
                "SOPClassUID": MRImageStorage,
                "ImageType": ["DERIVED", "SECONDARY", "OTHER"],
            },
            None,
        ),
    ],
)
def test_burned_in_reason(dataset_factory, attrs, reason):
    ds = dataset_factory(**attrs)
    found = burned_in_reason(ds)
    assert (found is None) == (reason is None)
    if reason is not None:
        assert reason in found


def test_refusal_is_a_422_unless_the_deployment_opts_in(dataset_factory, monkeypatch):
    ds = dataset_factory(BurnedInAnnotation="YES")
    reset_medical_settings()
    with pytest.raises(InvalidInput, match="burned-in annotation"):
        refuse_burned_in(ds)
    monkeypatch.setenv("VERTICALS_MEDICAL_REJECT_BURNED_IN_ANNOTATION", "false")
    reset_medical_settings()
    try:
        refuse_burned_in(ds)  # opted in: accepted
    finally:
        monkeypatch.delenv("VERTICALS_MEDICAL_REJECT_BURNED_IN_ANNOTATION")
        reset_medical_settings()


@pytest.mark.parametrize("path", sorted(DEMO.glob("*/*.dcm")), ids=lambda p: p.name)
def test_demo_dicoms_are_not_refused(path):
    assert burned_in_reason(pydicom.dcmread(path)) is None
