"""A model shipped as several files: one card naming each file with its sha256.

Some models are more than one artifact (network weights, a boosted model, the preprocessing and
calibration profile). A bundle ships them side by side in ``shared_models/<domain>/<name>/`` with
``<name>.card.json``: the model card, the primary file (registered as the model version's
artifact) and the others (registered as its derived artifacts, one kind each). Every file is read
through the verifying loader, at shipping and at every load.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator
from sqlalchemy.orm import Session
from verticals.core.errors import IntegrityError
from verticals.core.registry.cards import ModelCard
from verticals.core.registry.derived import derived_artifact, register_derived
from verticals.core.registry.gate import MetricGate
from verticals.core.registry.integrity import read_verified
from verticals.core.registry.shipping import (
    Promotion,
    Replaces,
    ensure_shipped,
    install_artifact,
    register_and_promote,
    replaces_older_shipped,
)
from verticals.core.registry.store import ModelVersion


class ShippedFile(BaseModel):
    file: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="name in the folder")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class ShippedBundle(BaseModel):
    """What a card file (``<name>.card.json``) holds."""

    card: ModelCard
    primary: str = Field(description="the kind registered as the version's own artifact")
    files: dict[str, ShippedFile] = Field(description="kind → file, beside the card file")
    extra: dict[str, Any] = Field(
        default_factory=dict, description="the domain's own registry extras (e.g. training)"
    )

    @model_validator(mode="after")
    def _primary_is_listed(self) -> ShippedBundle:
        if self.primary not in self.files:
            raise ValueError(f"the primary kind {self.primary!r} is not among the files")
        if not self.card.version:
            raise ValueError("a shipped card needs a version")
        return self

    def registry_extra(self) -> dict[str, Any]:
        """What the registry keeps in ``extra``: the domain's extras and the bundle's files."""
        files = {kind: item.file for kind, item in self.files.items()}
        return {**self.extra, "bundle": files, "primary": self.primary}


def card_path(folder: Path, name: str) -> Path:
    """Where a bundle named ``name`` keeps its card by convention."""
    return folder / f"{name}.card.json"


def write_bundle(
    card_file: Path,
    card: ModelCard,
    payloads: Mapping[str, bytes],
    *,
    primary: str,
    filenames: Mapping[str, str],
    extra: Mapping[str, Any] | None = None,
) -> ShippedBundle:
    """Write ``payloads`` (kind → bytes) beside ``card_file`` under ``filenames[kind]``, and
    the card naming each with its sha256."""
    folder = card_file.parent
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, ShippedFile] = {}
    for kind, payload in payloads.items():
        (folder / filenames[kind]).write_bytes(payload)
        files[kind] = ShippedFile(file=filenames[kind], sha256=hashlib.sha256(payload).hexdigest())
    bundle = ShippedBundle(card=card, primary=primary, files=files, extra=dict(extra or {}))
    document = bundle.model_dump(mode="json")
    card_file.write_text(json.dumps(document, indent=1, default=float) + "\n")
    return bundle


def read_bundle(card_file: Path) -> ShippedBundle:
    return ShippedBundle.model_validate_json(card_file.read_bytes())


def ensure_bundle_shipped(
    *, domain: str, card_file: Path, replaces: Replaces = replaces_older_shipped
) -> ModelVersion:
    """Register the bundle of ``card_file`` once (core's :func:`ensure_shipped`: race-safe, the
    checked bytes) with its non-primary files as derived artifacts; the production version."""
    bundle = read_bundle(card_file)
    folder, name = card_file.parent, bundle.card.name
    primary = bundle.files[bundle.primary]

    def register_the_rest(session: Session, version: ModelVersion) -> None:
        for kind, item in bundle.files.items():
            if kind == bundle.primary:
                continue
            payload = read_verified(folder / item.file, item.sha256, what=f"shipped {name} {kind}")
            target = install_artifact(domain, name, version.version, item.file, payload)
            registered = register_derived(session, version, kind, target)
            if registered.sha256 != item.sha256:
                raise IntegrityError(
                    f"the registered {kind} of {version.ref} differs from the shipped one",
                    {"path": str(target), "expected": item.sha256, "actual": registered.sha256},
                )

    return ensure_shipped(
        domain=domain,
        name=name,
        card=bundle.card,
        sha256=primary.sha256,
        payload=lambda: read_verified(
            folder / primary.file, primary.sha256, what=f"shipped {name}"
        ),
        filename=primary.file,
        extra=bundle.registry_extra(),
        replaces=replaces,
        after_register=register_the_rest,
    )


def load_bundle_payloads(session: Session, version: ModelVersion) -> dict[str, bytes]:
    """The primary artifact and every derived artifact the version was shipped or registered
    with, each read through the verifying loader (IntegrityError on any mismatch)."""
    extra = version.extra or {}
    kinds = list((extra.get("bundle") or {}).keys())
    primary = str(extra.get("primary", "model"))
    payloads = {
        primary: read_verified(
            Path(version.artifact_path), version.sha256, what=f"artifact of {version.ref}"
        )
    }
    for kind in kinds:
        if kind == primary:
            continue
        found = derived_artifact(session, version, kind)
        if found is None:
            raise IntegrityError(
                f"the {kind} artifact of {version.ref} is not registered", {"kind": kind}
            )
        payloads[kind] = read_verified(Path(found.path), found.sha256, what=found.what)
    return payloads


def register_trained_bundle(
    session: Session,
    *,
    domain: str,
    folder: Path,
    bundle: ShippedBundle,
    metric: str,
    gate: MetricGate,
) -> Promotion:
    """Register a bundle written by :func:`write_bundle` (trained here) through core's
    :func:`register_and_promote` (staging, promoted when ``gate`` accepts ``metric``), its
    other files as derived artifacts in the same transaction."""
    name, version = bundle.card.name, bundle.card.version
    promotion = register_and_promote(
        session,
        domain=domain,
        name=name,
        artifact_path=folder / bundle.files[bundle.primary].file,
        card=bundle.card,
        metric=metric,
        gate=gate,
        extra=bundle.registry_extra(),
    )
    for kind, item in bundle.files.items():
        if kind != bundle.primary:
            registered = register_derived(session, promotion.version, kind, folder / item.file)
            if registered.sha256 != item.sha256:
                raise IntegrityError(
                    f"the {kind} of {domain}/{name}:{version} changed after it was written",
                    {"expected": item.sha256, "actual": registered.sha256},
                )
    return promotion
