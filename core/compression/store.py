"""Storing a compression report with its model version.

The parent version gets ``extra["compression"]`` (the whole report), and every variant file
becomes a derived artifact of it (kind ``"compressed:<variant>"``, with its sha256), so it is
opened only through the verifying loader and ``verticals models verify`` checks it. Each ONNX
variant that was measured also becomes its own registered version ``"<parent>+<variant>"``
(stage ``staging``) with ``extra["metric_drop"]`` and ``extra["max_metric_drop"]``, so that
:func:`verticals.core.registry.promote` refuses to promote a variant that lost too much.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session
from verticals.core.compression.report import CompressionReport
from verticals.core.compression.resolve import split_model
from verticals.core.errors import InvalidInput, NotFound
from verticals.core.registry import ModelVersion, get_version, register, register_derived

DERIVED_PREFIX = "compressed:"


def derived_kind(variant: str) -> str:
    """The derived-artifact kind of a compression variant's file."""
    return f"{DERIVED_PREFIX}{variant}"


def variant_version(parent: str, variant: str) -> str:
    return f"{parent}+{variant}"


def artifacts_folder(model: str, version: str) -> Path:
    """Where the variants of ``model`` at ``version`` live: the home's artifacts folder."""
    from verticals.core.config import get_settings

    domain, name = split_model(model)
    settings = get_settings()
    settings.ensure_home()
    return settings.artifacts_dir / domain / name / version / "compressed"


def store_report(
    session: Session,
    report: CompressionReport,
    *,
    register_variants: bool = True,
    max_metric_drop: float | None = None,
    copy_to: Path | None = None,
) -> list[ModelVersion]:
    """Attach ``report`` to its parent version, register every variant file as a derived
    artifact of it and (``register_variants``) each ONNX variant as a version.

    ``max_metric_drop`` overrides the report's tolerance. Artifacts outside ``copy_to`` are
    copied there first (the registry must point at files that stay). Re-running replaces the
    parent's report and its derived artifacts; variant versions already registered are left as
    they are.
    """
    from verticals.core.db.models import ModelVersionRow

    if report.version is None:
        raise InvalidInput(f"report for {report.model} names no model version to store it with")
    domain, name = split_model(report.model)
    parent = get_version(session, domain, name, report.version)  # NotFound if unknown
    tolerance = report.max_metric_drop if max_metric_drop is None else max_metric_drop
    row = session.scalar(
        select(ModelVersionRow).where(
            ModelVersionRow.domain == domain,
            ModelVersionRow.name == name,
            ModelVersionRow.version == report.version,
        )
    )
    if row is None:  # pragma: no cover - get_version above found it
        raise NotFound(f"{domain}/{name} version {report.version} is not registered")
    row.extra = {**(row.extra or {}), "compression": report.model_dump(mode="json")}
    session.flush()
    files: dict[str, Path] = {}
    for variant in report.variants:
        if variant.path is None:
            continue
        path = Path(variant.path)
        if copy_to is not None and path.parent.resolve() != copy_to.resolve():
            copy_to.mkdir(parents=True, exist_ok=True)
            path = Path(shutil.copy2(path, copy_to / path.name))
        register_derived(session, parent, derived_kind(variant.name), path)
        files[variant.name] = path
    registered: list[ModelVersion] = []
    if not register_variants:
        return registered
    existing = {
        v
        for (v,) in session.execute(
            select(ModelVersionRow.version).where(
                ModelVersionRow.domain == domain, ModelVersionRow.name == name
            )
        )
    }
    for variant in report.variants:
        variant_path = files.get(variant.name)
        if variant.format != "onnx" or variant.metric is None or variant_path is None:
            continue
        version = variant_version(report.version, variant.name)
        if version in existing:
            continue
        card = parent.card.model_copy(
            update={
                "description": f"{variant.name} variant of {parent.ref}. {variant.notes}".strip(),
                "metrics": {variant.metric_name: variant.metric},
            }
        )
        registered.append(
            register(
                session,
                domain=domain,
                name=name,
                version=version,
                artifact_path=variant_path,
                metrics={variant.metric_name: variant.metric},
                card=card,
                stage="staging",
                extra={
                    "parent_version": report.version,
                    "variant": variant.name,
                    "metric_drop": variant.metric_drop,
                    "max_metric_drop": tolerance,
                    "compression": variant.model_dump(mode="json"),
                },
            )
        )
    return registered
