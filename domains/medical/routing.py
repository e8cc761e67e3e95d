"""Which task (model) an upload goes to: the explicit ``task`` field, else modality/body part."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from verticals.core.errors import InvalidInput


def resolve_task(
    tasks: Mapping[str, Any],
    *,
    requested: str | None,
    modality: str | None,
    body_part: str | None,
) -> str:
    """The task name for an upload, or :class:`InvalidInput` (422) saying why none fits.

    ``tasks`` maps names to specs with ``modalities`` and ``body_parts`` (sets of DICOM
    Modality / BodyPartExamined values). Without an explicit task, both the modality and the
    body part must match exactly one task: a chest CT or an abdominal ultrasound fits no task.
    """
    known = sorted(tasks)
    if requested is not None and requested.strip():
        name = requested.strip().lower()
        if name not in tasks:
            raise InvalidInput(
                f"unknown task {requested!r}", {"field": "task", "known_tasks": known}
            )
        return name
    if not modality:
        raise InvalidInput(
            "no task given and the upload carries no DICOM modality to choose one from; "
            "send the form field 'task'",
            {"field": "task", "known_tasks": known},
        )
    modality = modality.strip().upper()
    part = (body_part or "").strip().upper()
    fits = [
        name
        for name, spec in tasks.items()
        if modality in _upper(spec.modalities) and part and part in _upper(spec.body_parts)
    ]
    if len(fits) == 1:
        return fits[0]
    hints = {
        name: {
            "modalities": sorted(_upper(s.modalities)),
            "body_parts": sorted(_upper(s.body_parts)),
        }
        for name, s in tasks.items()
    }
    # the header's values are never echoed (a body part can hold a name): the tasks' accepted
    # values are listed instead, in ``tasks``
    reason = (
        "no task accepts this upload's modality and body part"
        + ("" if part else " (the body part is missing)")
        if not fits
        else f"this upload's modality and body part fit several tasks {sorted(fits)}"
    )
    accepted = "; ".join(
        f"{name}: modality {'/'.join(h['modalities'])}, body part {'/'.join(h['body_parts'])}"
        for name, h in sorted(hints.items())
    )
    raise InvalidInput(
        f"{reason} (accepted: {accepted}); send the form field 'task'",
        {"field": "task", "tasks": hints},
    )


def _upper(values: Any) -> set[str]:
    return {str(v).upper() for v in values}
