"""DICOM Structured Report (Comprehensive 3D SR, TID 1500 measurement report) with highdicom.

The report references the stored de-identified image as its evidence and source image, names
the model (device observer, algorithm identification) and holds, per label, a qualitative
finding and the model's probability. It is preliminary (not verified): a clinician's review is
recorded through the API and in the FHIR report.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

from verticals.core.errors import Conflict
from verticals.domains.medical.codes import (
    AI_FINDING,
    PROBABILITY,
    Code,
    finding_code,
    procedure_code,
)


def _concept(code: Code):  # noqa: ANN202 - highdicom CodedConcept
    import highdicom as hd

    return hd.sr.CodedConcept(value=code.value, scheme_designator=code.scheme, meaning=code.meaning)


def build_sr(
    image_bytes: bytes,
    *,
    task: str,
    model_version: str,
    findings: list[dict[str, Any]],
    predicted_label: str,
    uid_factory,  # noqa: ANN001 - callable returning a new UID
) -> bytes:
    """``image_bytes``: the de-identified image (DICOM Part 10). Returns the SR as Part 10."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            image = pydicom.dcmread(io.BytesIO(image_bytes))
            device = hd.sr.ObserverContext(
                observer_type=codes.DCM.Device,
                observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                    uid=uid_factory(),
                    name=f"verticals medical/{task}",
                    model_name=model_version[:64],
                ),
            )
            evaluations = [
                hd.sr.QualitativeEvaluation(
                    name=_concept(AI_FINDING), value=_concept(finding_code(predicted_label))
                )
            ]
            measurements = [
                hd.sr.Measurement(
                    name=_concept(
                        Code(
                            f"p_{item['label']}"[:16],
                            PROBABILITY.scheme,
                            f"Probability of {item['label'].replace('_', ' ')}",
                        )
                    ),
                    value=float(item["probability"]),
                    unit=hd.sr.CodedConcept("1", "UCUM", "no units"),
                )
                for item in findings
            ]
            group = hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=uid_factory(), identifier=f"AI {task} finding"
                ),
                algorithm_id=hd.sr.AlgorithmIdentification(
                    name=f"verticals medical/{task}", version=model_version[:64]
                ),
                source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(image)],
                measurements=measurements,
                qualitative_evaluations=evaluations,
            )
            report = hd.sr.MeasurementReport(
                observation_context=hd.sr.ObservationContext(observer_device_context=device),
                procedure_reported=_concept(procedure_code(task)),
                imaging_measurements=[group],
                title=codes.DCM.ImagingMeasurementReport,
            )
            sr = hd.sr.Comprehensive3DSR(
                evidence=[image],
                content=report,
                series_number=999,
                series_instance_uid=uid_factory(),
                sop_instance_uid=uid_factory(),
                instance_number=1,
                manufacturer="verticals",
                is_complete=True,
                is_final=False,
                is_verified=False,
                series_description=f"AI {task} report",
            )
            buffer = io.BytesIO()
            sr.save_as(buffer)
        except Exception as exc:  # noqa: BLE001 - an image highdicom cannot reference
            raise Conflict(
                f"a DICOM SR cannot be made for this study's image ({type(exc).__name__})"
            ) from None
    return buffer.getvalue()
