"""FHIR R4 DiagnosticReport for a study (JSON), with the findings as contained Observations.

No Patient is referenced: the study is de-identified. The imaging study is referenced by its
(de-identified) Study Instance UID as a logical identifier. Status is ``preliminary`` until a
clinician reviews it, then ``final`` with the clinician's label as the conclusion code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from verticals.domains.medical.codes import (
    DIAGNOSTIC_IMAGING_REPORT,
    PROBABILITY,
    Code,
    finding_code,
    procedure_code,
)


class Coding(BaseModel):
    system: str
    code: str
    display: str


class CodeableConcept(BaseModel):
    coding: list[Coding]
    text: str | None = None


class DiagnosticReport(BaseModel):
    """The subset of FHIR R4 DiagnosticReport this service fills in."""

    model_config = ConfigDict(populate_by_name=True)

    resourceType: str = "DiagnosticReport"  # noqa: N815 - FHIR field names
    id: str
    meta: dict[str, Any]
    contained: list[dict[str, Any]]
    identifier: list[dict[str, Any]]
    status: str
    category: list[CodeableConcept]
    code: CodeableConcept
    effectiveDateTime: str  # noqa: N815
    issued: str
    result: list[dict[str, str]]
    imagingStudy: list[dict[str, Any]]  # noqa: N815
    conclusion: str
    conclusionCode: list[CodeableConcept] = Field(default_factory=list)  # noqa: N815


def _concept(code: Code, text: str | None = None) -> CodeableConcept:
    return CodeableConcept(
        coding=[Coding(system=code.fhir_system, code=code.value, display=code.meaning)], text=text
    )


def _instant(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds") if moment.tzinfo else moment.isoformat() + "Z"


def build_report(
    *,
    study_id: str,
    task: str,
    created_at: datetime,
    model_version: str,
    study_uid: str,
    findings: list[dict[str, Any]],
    predicted_label: str,
    review_label: str | None,
    review_comment: str | None,
    issued: datetime,
) -> dict[str, Any]:
    device = {
        "resourceType": "Device",
        "id": "model",
        "deviceName": [{"name": f"verticals medical/{task}", "type": "model-name"}],
        "version": [{"value": model_version}],
    }
    observations = []
    for index, item in enumerate(findings):
        observations.append(
            {
                "resourceType": "Observation",
                "id": f"finding-{index}",
                "status": "final" if review_label else "preliminary",
                "code": _concept(finding_code(item["label"]), item["label"]).model_dump(
                    exclude_none=True
                ),
                "method": _concept(PROBABILITY).model_dump(exclude_none=True),
                "device": {"reference": "#model"},
                "valueQuantity": {
                    "value": round(float(item["probability"]), 6),
                    "unit": "probability",
                    "system": "http://unitsofmeasure.org",
                    "code": "1",
                },
            }
        )
    conclusion = f"AI ({model_version}): {predicted_label.replace('_', ' ')}"
    if predicted_label == "indeterminate":
        conclusion += " (input outside the model's scope: no finding claimed)"
    if review_label:
        if review_label == predicted_label:
            conclusion += "; confirmed by a clinician"
        else:
            conclusion += f"; corrected by a clinician to {review_label.replace('_', ' ')}"
    final_label = review_label or predicted_label
    report = DiagnosticReport(
        id=study_id,
        meta={"profile": ["http://hl7.org/fhir/StructureDefinition/DiagnosticReport"]},
        contained=[device, *observations],
        identifier=[{"system": "urn:verticals:medical:study", "value": study_id}],
        status="final" if review_label else "preliminary",
        category=[
            CodeableConcept(
                coding=[
                    Coding(
                        system="http://terminology.hl7.org/CodeSystem/v2-0074",
                        code="RAD",
                        display="Radiology",
                    )
                ]
            )
        ],
        code=_concept(DIAGNOSTIC_IMAGING_REPORT, procedure_code(task).meaning),
        effectiveDateTime=_instant(created_at),
        issued=_instant(issued),
        result=[{"reference": f"#{o['id']}"} for o in observations],
        imagingStudy=[
            {
                "type": "ImagingStudy",
                "identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"},
            }
        ],
        conclusion=conclusion + (f". Comment: {review_comment}" if review_comment else ""),
        conclusionCode=[_concept(finding_code(final_label), final_label)],
    )
    return report.model_dump(mode="json", exclude_none=True)
