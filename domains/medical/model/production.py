"""Registry side: register the shipped baselines, load the production classifier."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session
from verticals.core.db import session_scope
from verticals.core.errors import ModelUnavailable
from verticals.core.registry import (
    ModelVersion,
    derived_artifact,
    get_version,
    production_version,
    read_verified,
    register_derived,
)
from verticals.core.registry.bundle import ShippedBundle, ensure_bundle_shipped
from verticals.domains.medical.model.artifacts import (
    DOMAIN,
    OOD_KIND,
    WEIGHTS,
    ModelExtra,
    card_file,
    model_extra,
    shipped_card,
    shipped_model,
    shipped_ood_profile,
)
from verticals.domains.medical.model.inference import Classifier
from verticals.domains.medical.model.ood import OodProfile, load_profile_bytes
from verticals.domains.medical.model.tasks import TASKS, get_task


def _register_shipped_profile(
    session: Session, version: ModelVersion, shipped: ShippedBundle
) -> None:
    """Register the shipped OOD profile of a shipped version registered by a release that
    shipped none (a version registered from this card got it with the weights)."""
    if shipped.card.version != version.version or derived_artifact(session, version, OOD_KIND):
        return
    profile = shipped_ood_profile(shipped)
    if profile is None:
        return
    target = Path(version.artifact_path).with_name("ood.safetensors")
    target.write_bytes(profile)
    register_derived(session, version, OOD_KIND, target)


def ensure_production_models() -> dict[str, str]:
    """Register each task's shipped model if it is new here (promoted over nothing or an older
    shipped baseline; a model trained here stays), with its OOD profile.

    Returns task → production version. Needs a migrated database; never reads ``../shared``.
    """
    versions: dict[str, str] = {}
    for task in TASKS:
        # the weights are hashed as read, and only when this version is new here
        shipped = shipped_card(task)
        current = ensure_bundle_shipped(domain=DOMAIN, card_file=card_file(task))
        with session_scope() as session:
            _register_shipped_profile(session, current, shipped)
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
    weights = read_verified(path, shipped.files[WEIGHTS].sha256, what=f"shipped weights of {task}")
    profile = shipped_ood_profile(shipped)
    ood = load_profile_bytes(profile) if profile is not None else None
    return Classifier(model_extra(shipped), weights, shipped.card.version, shipped.card, ood=ood)


def registered_ood_profile(session: Session, version: ModelVersion) -> OodProfile | None:
    """The version's OOD profile (derived artifact ``ood-profile``), read through its sha256
    check; None when the version has none (it is then served without the scope check)."""
    found = derived_artifact(session, version, OOD_KIND)
    if found is None:
        return None
    return load_profile_bytes(read_verified(Path(found.path), found.sha256, what=found.what))
