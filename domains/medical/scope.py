"""Whether an upload is something the task's model can speak about, and the decision it yields.

Two checks, both reported as warnings a hospital system can read:

- **input–task fit**: the DICOM header says what the picture is. A task declares the Modality,
  BodyPartExamined and PhotometricInterpretation values it was trained on; a header that says
  otherwise (an MR sent to the chest X-ray model, a CR sent as breast ultrasound) does not fit.
  A missing attribute (PNG/JPEG uploads, headers without BodyPartExamined) is not a misfit.
- **distribution distance**: the model's out-of-distribution score (``model.ood``), distance /
  calibrated cut; above 1 the picture is unlike anything in training.

Either makes the finding ``indeterminate``: the probabilities are still returned, but no label
is claimed. Warnings quote a header value only when it is a DICOM defined term (a modality
code, a photometric interpretation), never other text, so no patient data can travel in them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INDETERMINATE = "indeterminate"
# Values a warning may quote: DICOM defined terms (PS3.3 C.7.3.1.1.1 Modality, C.7.6.3.1.2
# Photometric Interpretation). Anything else in the header is free text as far as we know and
# is never quoted: a BodyPartExamined of "JANE DOE" is valid CS.
_MODALITIES = frozenset(
    "AR ASMT AU BDUS BI BMD CR CT CTPROTOCOL DG DOC DX ECG EPS ES FID GM HC HD IO IOL IVOCT IVUS "
    "KER KO LEN LS MG MR M3D NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV OSS OT PLAN PR PT PX REG "
    "RESP RF RG RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN RTSTRUCT RWV SEG SM SMR "
    "SR SRF STAIN TEXTUREMAP TG US VA XA XAPROTOCOL XC".split()
)
_PHOTOMETRICS = frozenset(
    ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "YBR_FULL", "YBR_FULL_422",
     "YBR_PARTIAL_420", "YBR_ICT", "YBR_RCT", "XYB")
)


@dataclass(frozen=True)
class Decision:
    finding: str  # the task label to act on, or "indeterminate"
    predicted_label: str  # the model's label at its threshold, whatever the scope
    in_scope: bool
    warnings: list[str] = field(default_factory=list)


def _named(name: str, value: str, terms: frozenset[str]) -> str:
    return f"{name} {value}" if value in terms else name


def _expects(values: Any) -> str:
    return ", ".join(sorted(str(v) for v in values))


def fit_warnings(
    spec: Any, *, modality: str | None, body_part: str | None, photometric: str | None
) -> list[str]:
    """Why the header says this upload is not what ``spec``'s model was trained on (empty: fits)."""
    checks = (
        ("modality", modality, getattr(spec, "modalities", ()), _MODALITIES),
        ("body part", body_part, getattr(spec, "body_parts", ()), frozenset()),
        ("photometric interpretation", photometric, getattr(spec, "photometrics", ()),
         _PHOTOMETRICS),
    )
    warnings = []
    for name, value, allowed, terms in checks:
        wanted = frozenset(str(v).upper() for v in allowed)
        given = (value or "").strip().upper()
        if given and wanted and given not in wanted:
            warnings.append(
                f"{_named(name, given, terms)} does not fit task {spec.name!r} "
                f"(expects {_expects(wanted)}): input outside the model's scope"
            )
    return warnings


def predicted_label(spec: Any, probability: float, threshold: float) -> str:
    if probability >= threshold:
        return spec.positive_label
    others = [label for label in spec.labels if label != spec.positive_label]
    return others[0] if len(others) == 1 else f"not_{spec.positive_label}"


def decide(
    spec: Any,
    probability: float,
    threshold: float,
    *,
    fit: list[str],
    ood_score: float | None,
) -> Decision:
    """The finding for one prediction: the thresholded label when the input is in scope."""
    label = predicted_label(spec, probability, threshold)
    warnings = list(fit)
    if ood_score is None:
        warnings.append(
            "this model version has no out-of-distribution profile: the image was not checked "
            "against the training distribution"
        )
    elif ood_score > 1.0:
        warnings.append(
            f"image is unlike the training images of task {spec.name!r} (distance "
            f"{ood_score:.2f}x the calibrated cut): input outside the model's scope"
        )
    in_scope = not fit and (ood_score is None or ood_score <= 1.0)
    return Decision(
        finding=label if in_scope else INDETERMINATE,
        predicted_label=label,
        in_scope=in_scope,
        warnings=warnings,
    )
