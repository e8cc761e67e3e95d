"""Registry side: register the shipped baselines, load the production classifier."""

from __future__ import annotations

import shutil

from verticals.core.config import get_settings
from verticals.core.db import session_scope
from verticals.core.errors import ModelUnavailable
from verticals.core.registry import (
    ModelVersion,
    get_version,
    production_version,
    promote,
    register,
    verified_artifact,
)
from verticals.core.registry.store import list_versions
from verticals.domains.medical.model.artifacts import DOMAIN, ModelExtra, shipped_model
from verticals.domains.medical.model.inference import Classifier
from verticals.domains.medical.model.tasks import TASKS, get_task


def _register_shipped(session, task: str) -> ModelVersion:
    shipped, weights = shipped_model(task)
    known = {v.version for v in list_versions(session, DOMAIN, task)}
    if shipped.version in known:  # registered before, later archived: bring it back
        return promote(session, domain=DOMAIN, name=task, version=shipped.version)
    settings = get_settings()
    settings.ensure_home()
    target = settings.artifacts_dir / DOMAIN / task / shipped.version / "model.safetensors"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, target)
    return register(
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
            versions[task] = current.version
    return versions


def classifier_from_version(version: ModelVersion) -> Classifier:
    weights = verified_artifact(version)  # sha256 checked on every load
    extra = ModelExtra.model_validate(version.extra)
    classifier = Classifier(extra, weights, version.version, version.card)
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
    return classifier_from_version(found)


def shipped_classifier(task: str) -> Classifier:
    """The shipped model of ``task`` straight from the package (no database), sha256-checked."""
    shipped, weights = shipped_model(task)
    return Classifier(shipped.extra, weights, shipped.version, shipped.card)
