"""Coded concepts for outputs (SNOMED CT where a standard code fits, else a local ``99VRT`` code)."""

from __future__ import annotations

from dataclasses import dataclass

LOCAL_SCHEME = "99VRT"  # private coding scheme (DICOM PS3.16 8.2: designators starting "99")


@dataclass(frozen=True)
class Code:
    value: str
    scheme: str
    meaning: str

    @property
    def fhir_system(self) -> str:
        return {
            "SCT": "http://snomed.info/sct",
            "LN": "http://loinc.org",
            "DCM": "http://dicom.nema.org/resources/ontology/DCM",
        }.get(self.scheme, "urn:verticals:medical")


_FINDINGS = {
    "pneumonia": Code("233604007", "SCT", "Pneumonia"),
    "normal": Code("17621005", "SCT", "Normal"),
    "malignant": Code("363346000", "SCT", "Malignant neoplastic disease"),
    "normal_or_benign": Code("normal_or_benign", LOCAL_SCHEME, "Normal or benign"),
    # the input was outside the model's scope: no label is claimed
    "indeterminate": Code("82334004", "SCT", "Indeterminate"),
}
_PROCEDURES = {
    "pneumonia": Code("168731009", "SCT", "Chest X-ray"),
    "breast": Code("47079000", "SCT", "Ultrasonography of breast"),
}
PROBABILITY = Code("probability", LOCAL_SCHEME, "Model probability of finding")
AI_FINDING = Code("121071", "DCM", "Finding")
DIAGNOSTIC_IMAGING_REPORT = Code("18748-4", "LN", "Diagnostic imaging study")


def finding_code(label: str) -> Code:
    return _FINDINGS.get(label, Code(label, LOCAL_SCHEME, label.replace("_", " ").capitalize()))


def procedure_code(task: str) -> Code:
    return _PROCEDURES.get(task, Code(task, LOCAL_SCHEME, f"Imaging for {task}"))
