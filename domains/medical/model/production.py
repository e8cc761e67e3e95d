"""Registry side: register the shipped baselines, load the production classifier."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.orm import Session
from verticals.core.config import get_settings
from verticals.core.db import session_scope
from verticals.core.errors import IntegrityError, ModelUnavailable
from verticals.core.registry import (
    ModelVersion,
    derived_artifact,
    get_version,
    production_version,
    promote,
    read_verified,
    register,
    register_derived,
)
from verticals.core.registry.store import list_versions
from verticals.domains.medical.model.artifacts import (
    DOMAIN,
    ModelExtra,
    ShippedModel,
    shipped_model,
    shipped_ood_profile,
)
from verticals.domains.medical.model.inference import Classifier
from verticals.domains.medical.model.ood import OodProfile, load_profile_bytes
from verticals.domains.medical.model.tasks import TASKS, get_task

OOD_KIND = "ood-profile"


def _register_shipped(session: Session, task: str) -> ModelVersion:
    shipped, weights = shipped_model(task)
    known = {v.version for v in list_versions(session, DOMAIN, task)}
    if shipped.version in known:  # registered before, later archived: bring it back
        return promote(session, domain=DOMAIN, name=task, version=shipped.version)
    settings = get_settings()
    settings.ensure_home()
    target = settings.artifacts_dir / DOMAIN / task / shipped.version / "model.safetensors"
    target.parent.mkdir(parents=True, exist_ok=True)
    # the bytes written are the bytes checked: a file swapped after the check is never copied
    _write_atomic(target, _shipped_weights(shipped, weights))
    version = register(
        session,
        domain=DOMAIN,
        name=task,
        version=shipped.version,
        artifact_path=target,
        metrics=shipped.card.metrics,
        card=shipped.card,
        stage="production",
        extra=shipped.extra.to_json(),
    )
    if version.sha256 != shipped.sha256:  # the target changed between our write and its hash
        raise IntegrityError(
            f"registered weights of medical/{task} differ from the shipped ones",
            {"path": str(target), "expected": shipped.sha256, "actual": version.sha256},
        )
    _register_shipped_profile(session, version)
    return version


def _shipped_weights(shipped: ShippedModel, weights: Path) -> bytes:
    """The shipped weights' bytes, hashed as read (the bytes returned are the bytes checked)."""
    return read_verified(weights, shipped.sha256, what=f"shipped weights of {shipped.task}")


def _write_atomic(target: Path, payload: bytes) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, target)


def _register_shipped_profile(session: Session, version: ModelVersion) -> None:
    """Register the shipped OOD profile of a shipped version that has none registered yet."""
    shipped, _ = shipped_model(version.name)
    if shipped.version != version.version or derived_artifact(session, version, OOD_KIND):
        return
    profile = shipped_ood_profile(shipped)
    if profile is None:
        return
    target = Path(version.artifact_path).with_name("ood.safetensors")
    target.write_bytes(profile)
    register_derived(session, version, OOD_KIND, target)


def ensure_production_models() -> dict[str, str]:
    """Register the shipped model of every task that has no production version.

    Returns task → production version. Needs a migrated database; never reads ``../shared``.
    """
    versions: dict[str, str] = {}
    with session_scope() as session:
        for task in TASKS:
            current = production_version(session, DOMAIN, task)
            if current is None:
                current = _register_shipped(session, task)
            else:  # registered by an earlier release that shipped no OOD profile
                _register_shipped_profile(session, current)
            versions[task] = current.version
    return versions


def classifier_from_version(version: ModelVersion, session: Session | None = None) -> Classifier:
    """The classifier of a registered version: weights and OOD profile sha256-checked."""
    # read once, sha256-checked as read, loaded from those bytes (no reopen by path)
    weights = read_verified(
        Path(version.artifact_path), version.sha256, what=f"artifact of {version.ref}"
    )
    extra = ModelExtra.model_validate(version.extra)
    if session is None:
        with session_scope() as own:
            ood = registered_ood_profile(own, version)
    else:
        ood = registered_ood_profile(session, version)
    classifier = Classifier(extra, weights, version.version, version.card, ood=ood)
    classifier.registry_version = version  # derived artifacts (ONNX export) register under it
    return classifier


def load_classifier(task: str, version: str | None = None) -> Classifier:
    """The production classifier of ``task`` (or a given ``version``), sha256-checked."""
    get_task(task)
    with session_scope() as session:
        if version is None:
            found = production_version(session, DOMAIN, task)
            if found is None:
                raise ModelUnavailable(
                    f"no production model for medical/{task}; call ensure_production_models()"
                )
        else:
            found = get_version(session, DOMAIN, task, version)
        return classifier_from_version(found, session)


def shipped_classifier(task: str) -> Classifier:
    """The shipped model of ``task`` straight from the package (no database), sha256-checked."""
    shipped, path = shipped_model(task)
    weights = _shipped_weights(shipped, path)
    profile = shipped_ood_profile(shipped)
    ood = load_profile_bytes(profile) if profile is not None else None
    return Classifier(shipped.extra, weights, shipped.version, shipped.card, ood=ood)


def registered_ood_profile(session: Session, version: ModelVersion) -> OodProfile | None:
    """The version's OOD profile (derived artifact ``ood-profile``), read through its sha256
    check; None when the version has none (it is then served without the scope check)."""
    found = derived_artifact(session, version, OOD_KIND)
    if found is None:
        return None
    return load_profile_bytes(read_verified(Path(found.path), found.sha256, what=found.what))
