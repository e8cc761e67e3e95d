"""De-identification by the DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile.

Applied to every uploaded DICOM dataset before anything is stored.

**The table.** Actions come from Table E.1-1 as published by ``dicom-anonymizer`` (a maintained
library whose per-tag lists are generated from the standard). Version 2.1.0 ships the 2023 (its
default), 2024b and 2026c editions; we take :data:`PROFILE_EDITION` = 2026c, the newest, a
superset of 2024b (+35 attributes: pronouns, names to use, diagnoses code sequences...). 655
entries: 627 attributes pydicom 3.0 names, 25 newer ones it does not yet know (applied by tag all
the same) and 3 repeating-group ranges. The library's own ``anonymize_dataset`` is not used: it
keeps a process-wide dictionary of random UIDs (unbounded, and different after a restart, where
we need our keyed mapping), applies attribute actions at the top level only (not in sequence
items), and turns removed dates into ``00010101``. We apply its table with our own code.

**Actions** (what each becomes here):

- ``X`` remove. ``Z`` empty (zero length; a sequence keeps no item). ``D`` a dummy of the VR
  (see :func:`dummy_value`; PN ``ANONYMOUS^``, text ``ANON``, DA ``19000101``, TM ``000000``,
  DT ``19000101000000``, numbers 0, binary eight zero bytes, a UID mapped with our key).
  ``U`` a new UID: the source UID through :class:`UIDMapper`, an HMAC keyed per install, so the
  same study uploaded twice stays one study and no one without the key can link it back.
- Compound actions let the IOD decide (X only for Type 3, Z for Type 2, D for Type 1). We do not
  carry per-IOD type tables, so each resolves to the choice that keeps *any* IOD valid, which
  discloses nothing either: ``Z/D``, ``X/D``, ``X/Z/D`` → D; ``X/Z`` → Z; ``X/Z/U*`` (Referenced
  and Source Image Sequences) → the items are kept and cleaned like any item, which replaces the
  instance UIDs they contain (``U``), and a non-sequence would be U for a UID, Z otherwise.
- ``D`` on a sequence (``ContentSequence``, ``InstitutionCodeSequence``, person identification
  codes...): the items are kept, the table is applied inside them, and every value left in them,
  at any depth, becomes a dummy of its VR (standard UIDs excepted): a code that names a person or
  an institution is as identifying as the name.

**Beyond the table**, as the profile requires, applied in every sequence item at any depth: all
private attributes (odd groups, creators included) are removed, we keep none; curves (50xx) and
overlays (60xx) are removed as whole groups (the table lists 50xx and 60xx overlay data and
comments); any remaining person name (PN) is emptied; any remaining UID outside the standard's
root ``1.2.840.10008`` is mapped; group 0000/0002 elements in the body (not in items) are
removed, a file cannot hold them there. The
file meta is rebuilt from scratch (SOP class, the new SOP instance UID, the transfer syntax; no
source or sending AE titles, no private information) and the 128-byte preamble is zeroed.

**Dates and times.** As the basic profile says, without the Retain Longitudinal Temporal option:
each date/time attribute of the table is removed, emptied or replaced by the dummy above,
following its action (study, series, acquisition and content dates included; the Type 2
StudyDate/StudyTime stay present and empty). No date is shifted. A DA/DT/TM attribute the table
does not list (for example an expiry date) is emptied too, so that
``LongitudinalTemporalInformationModified=REMOVED`` holds for every date in the file.

The result carries ``PatientIdentityRemoved=YES``, ``DeidentificationMethod`` = :data:`METHOD`,
``DeidentificationMethodCodeSequence`` = (113100, DCM, "Basic Application Confidentiality
Profile") and ``LongitudinalTemporalInformationModified=REMOVED``; ``PatientName`` and
``PatientID`` are the dummies :data:`DUMMY_NAME` and :data:`DUMMY_ID`.

**Pixels are not cleaned.** An image whose pixels may show identifiers is refused before this
module runs (:func:`refuse_burned_in`, a 422): ``BurnedInAnnotation=YES``, or a secondary capture
(an SC SOP class, a ``ConversionType``, or an ``ImageType`` naming a screen capture) that does not
declare ``BurnedInAnnotation=NO``. ``DERIVED\\SECONDARY`` alone is not taken as a capture: it
marks every reformatted CT/MR series (pydicom's own MR_small is one). A deployment that cleans
pixels upstream opts in with ``VERTICALS_MEDICAL_REJECT_BURNED_IN_ANNOTATION=false``. PNG/JPEG
uploads, which we wrap into a Secondary Capture ourselves, hold no header to leak and are
accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    MultiFrameSingleBitSecondaryCaptureImageStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage,
    SecondaryCaptureImageStorage,
)
from verticals.core.errors import InvalidInput

DUMMY_NAME = "ANONYMOUS^"
DUMMY_ID = "ANON"
PROFILE_EDITION = "dicomfields_2026c"  # dicom-anonymizer 2.1.0: the newest table it ships
METHOD = "PS3.15 E.1-1 basic profile, 2026c table (verticals)"  # LO: at most 64 characters
DUMMY_DATE = "19000101"
DUMMY_TIME = "000000"
DUMMY_DATETIME = DUMMY_DATE + DUMMY_TIME
DUMMY_UR = "http://anonymized.invalid"  # RFC 2606 reserves .invalid
DUMMY_BYTES = b"\x00" * 8  # a whole value for OB/OW/OF/OD/OL/OV/UN
_STANDARD_UID_ROOT = "1.2.840.10008."
_UID_ROOT = "2.25."

# The library's lists, by the standard's action, and the one action each resolves to here
# ("U*": keep the sequence, clean its items like any other; see the module docstring).
RESOLUTION: dict[str, tuple[str, str]] = {
    "X_TAGS": ("X", "X"),
    "Z_TAGS": ("Z", "Z"),
    "D_TAGS": ("D", "D"),
    "U_TAGS": ("U", "U"),
    "Z_D_TAGS": ("Z/D", "D"),
    "X_Z_TAGS": ("X/Z", "Z"),
    "X_D_TAGS": ("X/D", "D"),
    "X_Z_D_TAGS": ("X/Z/D", "D"),
    "X_Z_U_STAR_TAGS": ("X/Z/U*", "U*"),
}
_EMPTY_BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
_TEXT_VRS = frozenset({"AE", "CS", "LO", "SH", "LT", "ST", "UT", "UC"})
_INT_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV"})
_SECONDARY_CAPTURE_CLASSES = frozenset(
    str(uid)
    for uid in (
        SecondaryCaptureImageStorage,
        MultiFrameSingleBitSecondaryCaptureImageStorage,
        MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
        MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
        MultiFrameTrueColorSecondaryCaptureImageStorage,
    )
)


def _load_table() -> tuple[dict[int, str], dict[int, str], list[tuple[int, int, int, int, str]]]:
    """(tag → standard action, tag → resolved action, repeating-group ranges) from the library."""
    from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector

    lists = dicom_anonymization_database_selector(PROFILE_EDITION)
    standard: dict[int, str] = {}
    resolved: dict[int, str] = {}
    ranges: list[tuple[int, int, int, int, str]] = []
    for name, (action, choice) in RESOLUTION.items():
        for entry in lists[name]:
            if len(entry) == 4:  # (group, element, group mask, element mask): 50xx, 60xx
                group, element, group_mask, element_mask = entry
                ranges.append((group, element, group_mask, element_mask, choice))
                continue
            tag = (entry[0] << 16) | entry[1]
            if tag in standard:
                raise RuntimeError(f"the profile table lists {tag:08X} twice")
            standard[tag] = action
            resolved[tag] = choice
    return standard, resolved, ranges


STANDARD_ACTIONS, TAG_ACTIONS, RANGE_ACTIONS = _load_table()


class UIDMapper:
    """Maps source UIDs to new ``2.25.<int>`` UIDs with a keyed hash (deterministic per key)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("key must be at least 16 bytes")
        self._key = key

    def __call__(self, uid: str) -> str:
        digest = hmac.new(self._key, str(uid).strip().encode(), hashlib.sha256).digest()
        return _UID_ROOT + str(int.from_bytes(digest[:16], "big"))

    def fresh(self) -> str:
        return _UID_ROOT + str(int.from_bytes(secrets.token_bytes(16), "big"))


def load_key(path: Path) -> bytes:
    """The install's de-identification key (created on first use, readable by the owner only)."""
    if path.is_file():
        key = path.read_bytes()
        if len(key) >= 16:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(key)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return key


# ---------------------------------------------------------------- burned-in annotation


def burned_in_reason(ds: Dataset) -> str | None:
    """Why ``ds``'s pixels may show identifiers (a fixed phrase, never a header value), or None."""
    flag = _text(ds, "BurnedInAnnotation").upper()
    if flag == "YES":
        return "BurnedInAnnotation=YES"
    if flag == "NO":
        return None
    if _text(ds, "SOPClassUID") in _SECONDARY_CAPTURE_CLASSES:
        return "a Secondary Capture SOP class without BurnedInAnnotation=NO"
    if _text(ds, "ConversionType"):
        return "a secondary capture (ConversionType present) without BurnedInAnnotation=NO"
    image_type = " ".join(str(v) for v in _values(ds, "ImageType")).upper()
    if "SCREEN" in image_type or "CAPTURE" in image_type:
        return "an ImageType naming a screen capture without BurnedInAnnotation=NO"
    return None


def refuse_burned_in(ds: Dataset) -> None:
    """Raise a 422 when the pixels may show identifiers, unless the deployment opted in."""
    from verticals.domains.medical.settings import get_medical_settings

    if not get_medical_settings().reject_burned_in_annotation:
        return
    reason = burned_in_reason(ds)
    if reason is not None:
        raise InvalidInput(
            f"the image may have burned-in annotation ({reason}): text drawn into the pixels "
            "cannot be removed by the basic de-identification profile, so it is refused",
            {"reason": "burned_in_annotation"},
        )


def _text(ds: Dataset, keyword: str) -> str:
    try:
        value = ds.get(keyword)
    except Exception:  # noqa: BLE001 - a malformed element reads as absent
        return ""
    if isinstance(value, list | MultiValue):
        value = "\\".join(str(v) for v in value)
    return str(value or "").strip()


def _values(ds: Dataset, keyword: str) -> list[Any]:
    try:
        value = ds.get(keyword)
    except Exception:  # noqa: BLE001
        return []
    if value is None:
        return []
    return list(value) if isinstance(value, list | MultiValue) else [value]


# ---------------------------------------------------------------- de-identification


def deidentify(ds: Dataset, mapper: UIDMapper) -> Dataset:
    """De-identify ``ds`` in place (and return it). See the module docstring for the rules."""
    _clean(ds, mapper, dummy=False, top=True)
    _ensure_identity(ds, mapper)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    code = Dataset()
    code.CodeValue = "113100"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = Sequence([code])
    ds.LongitudinalTemporalInformationModified = "REMOVED"
    _rebuild_file_meta(ds)
    if getattr(ds, "preamble", None) is not None:
        ds.preamble = b"\x00" * 128
    return ds


def action_for(tag: int) -> str | None:
    """The resolved action of the table for ``tag`` (ranges included), None when not listed."""
    action = TAG_ACTIONS.get(tag)
    if action is not None:
        return action
    group, element = tag >> 16, tag & 0xFFFF
    for r_group, r_element, group_mask, element_mask, choice in RANGE_ACTIONS:
        if group & group_mask == r_group & group_mask and (
            element & element_mask == r_element & element_mask
        ):
            return choice
    return None


def _removed_group(group: int, *, top: bool) -> bool:
    return (
        group & 1 == 1  # private
        or 0x5000 <= group <= 0x50FF  # curves
        or 0x6000 <= group <= 0x60FF  # overlays
        or (top and group in (0x0000, 0x0002))  # command / file meta elements in the body
    )


def _clean(ds: Dataset, mapper: UIDMapper, *, dummy: bool, top: bool = False) -> None:
    """Apply the table to ``ds`` and, recursively, to every sequence item.

    ``dummy``: ``ds`` is an item of a sequence whose action is D; values the table leaves alone
    become dummies too. ``top``: ``ds`` is the dataset itself, not an item.
    """
    for elem in list(ds):  # iterating converts raw elements: VRs are known from here on
        tag = int(elem.tag)
        if _removed_group(tag >> 16, top=top):
            del ds[elem.tag]
            continue
        action = action_for(tag)
        vr = _vr(elem)
        if action == "X":
            del ds[elem.tag]
        elif action == "Z":
            _empty(elem, vr)
        elif action == "U" or (action == "U*" and vr == "UI"):
            elem.value = _map_uids(elem.value, mapper, force=True)
        elif action == "D":
            if vr == "SQ":
                _clean_items(elem, mapper, dummy=True)
            else:
                elem.value = dummy_value(vr, elem.value, mapper, force=True)
        elif action == "U*" and vr != "SQ":
            _empty(elem, vr)
        elif vr == "SQ":  # listed as U*, or not listed (K: kept, its items cleaned)
            _clean_items(elem, mapper, dummy=dummy)
        elif dummy:
            elem.value = dummy_value(vr, elem.value, mapper, force=False)
        elif vr in ("PN", "DA", "DT", "TM"):
            _empty(elem, vr)
        elif vr == "UI":
            elem.value = _map_uids(elem.value, mapper, force=False)


def _clean_items(elem: DataElement, mapper: UIDMapper, *, dummy: bool) -> None:
    for item in elem.value or []:
        _clean(item, mapper, dummy=dummy)


def _vr(elem: DataElement) -> str:
    return str(elem.VR).split(" or ")[0]  # an ambiguous VR of a dataset built in memory


def _empty(elem: DataElement, vr: str) -> None:
    if vr == "SQ":
        elem.value = Sequence()
    elif vr in _EMPTY_BINARY_VRS:
        elem.value = b""
    elif vr in _TEXT_VRS or vr in ("PN", "DA", "DT", "TM", "UI", "UR", "AS"):
        elem.value = ""
    else:
        elem.value = None


def dummy_value(vr: str, value: object, mapper: UIDMapper, *, force: bool) -> object:
    """A dummy of ``vr`` that carries nothing of ``value`` (a UID is mapped with the key).

    ``force``: map standard UIDs too (the table named the attribute); otherwise SOP classes,
    transfer syntaxes and coding schemes, which identify no one, are kept.
    """
    if vr == "PN":
        return DUMMY_NAME
    if vr in _TEXT_VRS:
        return DUMMY_ID
    if vr == "UI":
        return _map_uids(value, mapper, force=force)
    if vr == "DA":
        return DUMMY_DATE
    if vr == "TM":
        return DUMMY_TIME
    if vr == "DT":
        return DUMMY_DATETIME
    if vr == "AS":
        return "000Y"
    if vr == "UR":
        return DUMMY_UR
    if vr in ("DS", "IS"):
        return "0"
    if vr in _INT_VRS:
        return 0
    if vr in ("FL", "FD"):
        return 0.0
    if vr in _EMPTY_BINARY_VRS:
        return DUMMY_BYTES
    return value  # AT: a tag number, identifies no one


def _map_uids(value: object, mapper: UIDMapper, *, force: bool) -> object:
    if value is None or value == "":
        return value

    def one(uid: object) -> str:
        text = str(uid).strip()
        if not text:
            return text
        if not force and text.startswith(_STANDARD_UID_ROOT):
            return text  # SOP classes, transfer syntaxes, coding schemes: not identifying
        return mapper(text)

    if isinstance(value, list | tuple | MultiValue):
        return [one(v) for v in value]
    return one(value)


def _ensure_identity(ds: Dataset, mapper: UIDMapper) -> None:
    """The attributes that storing, the SR and FHIR need, with non-identifying values."""
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if not str(getattr(ds, keyword, "") or "").strip():
            setattr(ds, keyword, mapper.fresh())
    if not str(getattr(ds, "SOPClassUID", "") or "").strip():
        ds.SOPClassUID = SecondaryCaptureImageStorage
    if not str(getattr(ds, "Modality", "") or "").strip():
        ds.Modality = "OT"
    ds.PatientName = DUMMY_NAME
    ds.PatientID = DUMMY_ID
    for keyword in (
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ReferringPhysicianName",
        "StudyID",
    ):
        setattr(ds, keyword, "")


def _rebuild_file_meta(ds: Dataset) -> None:
    """A new file meta: nothing of the source's but its transfer syntax."""
    old = getattr(ds, "file_meta", None)
    transfer_syntax = str(getattr(old, "TransferSyntaxUID", "") or "").strip() if old else ""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(str(ds.SOPClassUID))
    meta.MediaStorageSOPInstanceUID = UID(str(ds.SOPInstanceUID))
    meta.TransferSyntaxUID = UID(transfer_syntax) if transfer_syntax else ExplicitVRLittleEndian
    ds.file_meta = meta
