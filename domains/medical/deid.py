"""De-identification by the DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile.

Applied to every uploaded DICOM dataset before anything is stored. Actions follow Table E.1-1
(basic profile column): ``X`` remove, ``Z`` empty (Type 2) or dummy, ``D`` dummy, ``U`` a new UID
(the same source UID always maps to the same new UID within an install, keyed by a secret, so a
zipped series stays one series), ``K`` keep. Compound actions (``X/Z``, ``X/D``, ``Z/D``...) take
the empty/dummy form where the attribute is Type 1/2 for the IOD and removal otherwise; here the
table records the choice made.

Beyond the table, as the profile requires: all private attributes are removed, overlays (60xx)
and curves (50xx) are removed, any remaining person name (PN) is emptied, any remaining
non-standard UID (UI not under 1.2.840.10008) is replaced, and the result is flagged
``PatientIdentityRemoved=YES`` with ``DeidentificationMethodCodeSequence`` = (113100, DCM,
"Basic Application Confidentiality Profile"). Sequences are processed recursively.

Pixel data is not cleaned: images flagged ``BurnedInAnnotation=YES`` are refused upstream
(see ``imaging``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, SecondaryCaptureImageStorage

DUMMY_NAME = "ANONYMOUS^"
DUMMY_ID = "ANON"
METHOD = "DICOM PS3.15 E.1 Basic Application Level Confidentiality Profile (verticals)"
_STANDARD_UID_ROOT = "1.2.840.10008."
_UID_ROOT = "2.25."

# Table E.1-1, basic profile column (action chosen where the table allows several).
_ACTIONS: dict[str, str] = {
    # --- Z: keep the element, empty it (or a dummy for identifiers consumers expect)
    "AccessionNumber": "Z",
    "ContentCreatorName": "Z",
    "FillerOrderNumberImagingServiceRequest": "Z",
    "PatientBirthDate": "Z",
    "PatientID": "D",
    "PatientName": "D",
    "PatientSex": "Z",
    "PlacerOrderNumberImagingServiceRequest": "Z",
    "ReferringPhysicianName": "Z",
    "StudyDate": "Z",
    "StudyID": "Z",
    "StudyTime": "Z",
    "ContentDate": "Z",
    "ContentTime": "Z",
    "ContrastBolusAgent": "Z",
    "VerifyingObserverIdentificationCodeSequence": "Z",
    "VerifyingObserverName": "Z",
    # --- X: remove
    "AcquisitionComments": "X",
    "AcquisitionContextSequence": "X",
    "AcquisitionDate": "X",
    "AcquisitionDateTime": "X",
    "AcquisitionDeviceProcessingDescription": "X",
    "AcquisitionProtocolDescription": "X",
    "AcquisitionTime": "X",
    "ActualHumanPerformersSequence": "X",
    "AdditionalPatientHistory": "X",
    "AdmissionID": "X",
    "AdmittingDate": "X",
    "AdmittingDiagnosesCodeSequence": "X",
    "AdmittingDiagnosesDescription": "X",
    "AdmittingTime": "X",
    "Allergies": "X",
    "Arbitrary": "X",
    "AuthorObserverSequence": "X",
    "BranchOfService": "X",
    "CassetteID": "X",
    "CommentsOnThePerformedProcedureStep": "X",
    "ConfidentialityConstraintOnPatientDataDescription": "X",
    "ContentCreatorIdentificationCodeSequence": "X",
    "ContributionDescription": "X",
    "CountryOfResidence": "X",
    "CurrentPatientLocation": "X",
    "CustodialOrganizationSequence": "X",
    "DataSetTrailingPadding": "X",
    "DateOfLastCalibration": "X",
    "DateOfSecondaryCapture": "X",
    "DerivationDescription": "X",
    "DetectorID": "X",
    "DeviceSerialNumber": "X",
    "DigitalSignaturesSequence": "X",
    "DischargeDiagnosisDescription": "X",
    "DistributionAddress": "X",
    "DistributionName": "X",
    "EndAcquisitionDateTime": "X",
    "EthnicGroup": "X",
    "ExpectedCompletionDateTime": "X",
    "FrameComments": "X",
    "GantryID": "X",
    "GeneratorID": "X",
    "GraphicAnnotationSequence": "X",
    "HumanPerformerName": "X",
    "HumanPerformerOrganization": "X",
    "IconImageSequence": "X",
    "IdentifyingComments": "X",
    "ImageComments": "X",
    "ImagePresentationComments": "X",
    "ImagingServiceRequestComments": "X",
    "Impressions": "X",
    "InstanceCreationDate": "X",
    "InstanceCreationTime": "X",
    "InstitutionAddress": "X",
    "InstitutionCodeSequence": "X",
    "InstitutionName": "X",
    "InstitutionalDepartmentName": "X",
    "InsurancePlanIdentification": "X",
    "IntendedRecipientsOfResultsIdentificationSequence": "X",
    "InterpretationApproverSequence": "X",
    "InterpretationAuthor": "X",
    "InterpretationDiagnosisDescription": "X",
    "InterpretationIDIssuer": "X",
    "InterpretationRecorder": "X",
    "InterpretationText": "X",
    "InterpretationTranscriber": "X",
    "IssuerOfAdmissionID": "X",
    "IssuerOfPatientID": "X",
    "IssuerOfServiceEpisodeID": "X",
    "LastMenstrualDate": "X",
    "MAC": "X",
    "MedicalAlerts": "X",
    "MedicalRecordLocator": "X",
    "MilitaryRank": "X",
    "ModifiedAttributesSequence": "X",
    "ModifiedImageDescription": "X",
    "ModifyingDeviceID": "X",
    "NameOfPhysiciansReadingStudy": "X",
    "NamesOfIntendedRecipientsOfResults": "X",
    "Occupation": "X",
    "OperatorIdentificationSequence": "X",
    "OperatorsName": "X",
    "OrderCallbackPhoneNumber": "X",
    "OrderEnteredBy": "X",
    "OrderEntererLocation": "X",
    "OriginalAttributesSequence": "X",
    "OtherPatientIDsSequence": "X",
    "OtherPatientNames": "X",
    "OverlayComments": "X",
    "OverlayDate": "X",
    "OverlayTime": "X",
    "ParticipantSequence": "X",
    "PatientAddress": "X",
    "PatientAge": "X",
    "PatientBirthName": "X",
    "PatientBirthTime": "X",
    "PatientComments": "X",
    "PatientInsurancePlanCodeSequence": "X",
    "PatientMotherBirthName": "X",
    "PatientPrimaryLanguageCodeSequence": "X",
    "PatientPrimaryLanguageModifierCodeSequence": "X",
    "PatientReligiousPreference": "X",
    "PatientSexNeutered": "X",
    "PatientSize": "X",
    "PatientState": "X",
    "PatientTelephoneNumbers": "X",
    "PatientTransportArrangements": "X",
    "PatientWeight": "X",
    "PerformedLocation": "X",
    "PerformedProcedureStepDescription": "X",
    "PerformedProcedureStepEndDate": "X",
    "PerformedProcedureStepEndTime": "X",
    "PerformedProcedureStepID": "X",
    "PerformedProcedureStepStartDate": "X",
    "PerformedProcedureStepStartTime": "X",
    "PerformedStationAETitle": "X",
    "PerformedStationGeographicLocationCodeSequence": "X",
    "PerformedStationName": "X",
    "PerformedStationNameCodeSequence": "X",
    "PerformingPhysicianIdentificationSequence": "X",
    "PerformingPhysicianName": "X",
    "PersonAddress": "X",
    "PersonIdentificationCodeSequence": "X",
    "PersonName": "X",
    "PersonTelephoneNumbers": "X",
    "PhysicianApprovingInterpretation": "X",
    "PhysiciansOfRecord": "X",
    "PhysiciansOfRecordIdentificationSequence": "X",
    "PhysiciansReadingStudyIdentificationSequence": "X",
    "PlateID": "X",
    "PreMedication": "X",
    "PregnancyStatus": "X",
    "ProtocolName": "X",
    "ReasonForStudy": "X",
    "ReasonForTheImagingServiceRequest": "X",
    "ReasonForTheRequestedProcedure": "X",
    "ReferencedDigitalSignatureSequence": "X",
    "ReferencedImageSequence": "X",
    "ReferencedPatientAliasSequence": "X",
    "ReferencedPatientSequence": "X",
    "ReferencedPerformedProcedureStepSequence": "X",
    "ReferencedSOPInstanceMACSequence": "X",
    "ReferencedStudySequence": "X",
    "ReferringPhysicianAddress": "X",
    "ReferringPhysicianIdentificationSequence": "X",
    "ReferringPhysicianTelephoneNumbers": "X",
    "RegionOfResidence": "X",
    "RequestAttributesSequence": "X",
    "RequestedContrastAgent": "X",
    "RequestedProcedureComments": "X",
    "RequestedProcedureDescription": "X",
    "RequestedProcedureID": "X",
    "RequestedProcedureLocation": "X",
    "RequestingPhysician": "X",
    "RequestingService": "X",
    "ResponsibleOrganization": "X",
    "ResponsiblePerson": "X",
    "ResultsComments": "X",
    "ResultsDistributionListSequence": "X",
    "ResultsIDIssuer": "X",
    "ReviewerName": "X",
    "ScheduledHumanPerformersSequence": "X",
    "ScheduledPatientInstitutionResidence": "X",
    "ScheduledPerformingPhysicianIdentificationSequence": "X",
    "ScheduledPerformingPhysicianName": "X",
    "ScheduledProcedureStepDescription": "X",
    "ScheduledProcedureStepEndDate": "X",
    "ScheduledProcedureStepEndTime": "X",
    "ScheduledProcedureStepLocation": "X",
    "ScheduledProcedureStepStartDate": "X",
    "ScheduledProcedureStepStartTime": "X",
    "ScheduledStationAETitle": "X",
    "ScheduledStationGeographicLocationCodeSequence": "X",
    "ScheduledStationName": "X",
    "ScheduledStationNameCodeSequence": "X",
    "ScheduledStudyLocation": "X",
    "ScheduledStudyLocationAETitle": "X",
    "SeriesDate": "X",
    "SeriesDescription": "X",
    "SeriesTime": "X",
    "ServiceEpisodeDescription": "X",
    "ServiceEpisodeID": "X",
    "SmokingStatus": "X",
    "SourceImageSequence": "X",
    "SpecialNeeds": "X",
    "StationName": "X",
    "StudyComments": "X",
    "StudyDescription": "X",
    "StudyIDIssuer": "X",
    "TextComments": "X",
    "TextString": "X",
    "TimeOfLastCalibration": "X",
    "TimeOfSecondaryCapture": "X",
    "TimezoneOffsetFromUTC": "X",
    "TopicAuthor": "X",
    "TopicKeywords": "X",
    "TopicSubject": "X",
    "TopicTitle": "X",
    "VerifyingOrganization": "X",
    "VisitComments": "X",
    "DigitalSignatureUID": "X",
    "AffectedSOPInstanceUID": "X",
    # --- U: replace UIDs (any other non-standard UID is replaced by the catch-all below)
    "StudyInstanceUID": "U",
    "SeriesInstanceUID": "U",
    "SOPInstanceUID": "U",
    "FrameOfReferenceUID": "U",
    "SynchronizationFrameOfReferenceUID": "U",
    "ConcatenationUID": "U",
    "DimensionOrganizationUID": "U",
    "IrradiationEventUID": "U",
    "ReferencedSOPInstanceUID": "U",
    "ReferencedFrameOfReferenceUID": "U",
    "RelatedFrameOfReferenceUID": "U",
    "InstanceCreatorUID": "U",
    "DeviceUID": "U",
    "StorageMediaFileSetUID": "U",
    "UID": "U",
}


def _tag_actions() -> dict[int, str]:
    table: dict[int, str] = {}
    for keyword, action in _ACTIONS.items():
        tag = tag_for_keyword(keyword)
        if tag is None:  # a keyword this pydicom version does not know
            continue
        table[int(tag)] = action
    return table


TAG_ACTIONS = _tag_actions()


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


def deidentify(ds: Dataset, mapper: UIDMapper) -> Dataset:
    """De-identify ``ds`` in place (and return it). See the module docstring for the rules."""
    _clean(ds, mapper)
    _ensure_identity(ds, mapper)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    code = Dataset()
    code.CodeValue = "113100"
    code.CodingSchemeDesignator = "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = Sequence([code])
    ds.LongitudinalTemporalInformationModified = "REMOVED"
    _fix_file_meta(ds)
    return ds


def _clean(ds: Dataset, mapper: UIDMapper) -> None:
    for elem in list(ds):
        tag = int(elem.tag)
        group = tag >> 16
        if (
            elem.tag.is_private
            or 0x5000 <= group <= 0x50FF
            or (0x6000 <= group <= 0x60FF and (tag & 0xFFFF) in (0x3000, 0x4000, 0x4022))
        ):
            del ds[elem.tag]
            continue
        action = TAG_ACTIONS.get(tag)
        if action == "X":
            del ds[elem.tag]
            continue
        if elem.VR == "SQ":
            if action == "Z":
                elem.value = Sequence()
                continue
            for item in elem.value or []:
                _clean(item, mapper)
            continue
        if action == "D":
            elem.value = DUMMY_NAME if elem.VR == "PN" else DUMMY_ID
        elif action == "Z" or elem.VR == "PN":
            elem.value = ""
        elif action == "U" or elem.VR == "UI":
            elem.value = _map_uids(elem.value, mapper, force=action == "U")


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

    if isinstance(value, list | tuple) or (
        hasattr(value, "__iter__") and not isinstance(value, str)
    ):
        return [one(v) for v in value]  # type: ignore[union-attr]
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


def _fix_file_meta(ds: Dataset) -> None:
    meta = getattr(ds, "file_meta", None)
    if meta is None or not isinstance(meta, FileMetaDataset):
        meta = FileMetaDataset(meta) if meta is not None else FileMetaDataset()
        ds.file_meta = meta
    for elem in list(meta):
        if elem.tag.is_private:
            del meta[elem.tag]
    meta.MediaStorageSOPClassUID = UID(str(ds.SOPClassUID))
    meta.MediaStorageSOPInstanceUID = UID(str(ds.SOPInstanceUID))
    if not str(getattr(meta, "TransferSyntaxUID", "") or "").strip():
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for keyword in (
        "SourceApplicationEntityTitle",
        "SendingApplicationEntityTitle",
        "ReceivingApplicationEntityTitle",
        "PrivateInformation",
        "PrivateInformationCreatorUID",
    ):
        if keyword in meta:
            delattr(meta, keyword)
