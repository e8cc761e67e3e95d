"""Whether an upload is something the task's model can speak about, and the decision it yields.

Two checks, both reported as warnings a hospital system can read:

- **input–task fit**: the DICOM header says what the picture is. A task declares the Modality,
  BodyPartExamined and PhotometricInterpretation values it was trained on; a header that says
  otherwise (an MR sent to the chest X-ray model, a CR sent as breast ultrasound) does not fit.
  A missing attribute (PNG/JPEG uploads, headers without BodyPartExamined) is not a misfit.
- **distribution distance**: the model's out-of-distribution score (``model.ood``), distance /
  calibrated cut; above 1 the picture is unlike anything in training.

Either makes the finding ``indeterminate``: the probabilities are still returned, but no label
is claimed. Warnings quote only coded header values (DICOM CS: capitals, digits, space, ``_``),
never free text, so no patient data can travel through them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

INDETERMINATE = "indeterminate"
_CODED = re.compile(r"^[A-Z0-9 _]{1,16}$")


@dataclass(frozen=True)
class Decision:
    finding: str  # the task label to act on, or "indeterminate"
    predicted_label: str  # the model's label at its threshold, whatever the scope
    in_scope: bool
    warnings: list[str] = field(default_factory=list)


def _coded(value: str) -> str:
    return value if _CODED.match(value) else "a non-standard value"


def _expects(values: Any) -> str:
    return ", ".join(sorted(str(v) for v in values))


def fit_warnings(
    spec: Any, *, modality: str | None, body_part: str | None, photometric: str | None
) -> list[str]:
    """Why the header says this upload is not what ``spec``'s model was trained on (empty: fits)."""
    checks = (
        ("modality", modality, getattr(spec, "modalities", ())),
        ("body part", body_part, getattr(spec, "body_parts", ())),
        ("photometric interpretation", photometric, getattr(spec, "photometrics", ())),
    )
    warnings = []
    for name, value, allowed in checks:
        wanted = {str(v).upper() for v in allowed}
        if value and wanted and value.strip().upper() not in wanted:
            warnings.append(
                f"{name} {_coded(value.strip().upper())} does not fit task {spec.name!r} "
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
