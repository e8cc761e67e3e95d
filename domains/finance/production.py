"""The production model: register the shipped baseline on first use, load with sha256 check."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from verticals.core.config import get_settings
from verticals.core.db import session_scope
from verticals.core.errors import Conflict, IntegrityError, ModelUnavailable
from verticals.core.registry import (
    ModelCard,
    ModelVersion,
    production_version,
    read_verified,
    register,
)
from verticals.domains.finance.config import MODEL_NAME
from verticals.domains.finance.model import FraudModel
from verticals.shared_models.finance import CARD_FILE, MODEL_FILE

DOMAIN = "finance"


def shipped_card() -> dict[str, Any]:
    """The shipped card file: ``{"card": ModelCard, "sha256", "artifact", "training"}``."""
    return json.loads(CARD_FILE.read_text())


def ensure_production_model() -> str:
    with session_scope() as session:
        current = production_version(session, DOMAIN, MODEL_NAME)
        if current is not None:
            return current.version
    if not MODEL_FILE.is_file() or not CARD_FILE.is_file():
        raise ModelUnavailable("the shipped finance model is missing from shared_models/finance")
    shipped = shipped_card()
    # read once and hashed as read: the bytes written below are the bytes checked
    payload = read_verified(
        MODEL_FILE, shipped["sha256"], what="the shipped finance model (its card's sha256)"
    )
    card = ModelCard.model_validate(shipped["card"])
    settings = get_settings()
    settings.ensure_home()
    target = settings.artifacts_dir / DOMAIN / f"{MODEL_NAME}-{card.version}{MODEL_FILE.suffix}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_bytes() != payload:
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(payload)
        os.replace(tmp, target)
    try:
        with session_scope() as session:
            version = register(
                session,
                domain=DOMAIN,
                name=MODEL_NAME,
                version=card.version,
                artifact_path=target,
                metrics=card.metrics,
                card=card,
                stage="production",
                extra={"source": "shipped", "training": shipped.get("training", {})},
            )
            if version.sha256 != shipped["sha256"]:  # the target changed after our write
                raise IntegrityError(
                    "the registered finance model differs from the shipped one",
                    {"path": str(target), "expected": shipped["sha256"], "actual": version.sha256},
                )
            return version.version
    except Conflict:  # another process registered it first
        with session_scope() as session:
            current = production_version(session, DOMAIN, MODEL_NAME)
        if current is None:
            raise
        return current.version


def production_entry() -> ModelVersion:
    with session_scope() as session:
        current = production_version(session, DOMAIN, MODEL_NAME)
    if current is None:
        raise ModelUnavailable("no production finance model is registered")
    return current


def load_model(version: ModelVersion, nthread: int = 1) -> FraudModel:
    """Load a registered version after checking its sha256.

    The file is read once and hashed as read; the model is built from those bytes, so a file
    swapped after the check is never served.
    """
    payload = read_verified(
        Path(version.artifact_path), version.sha256, what=f"artifact of {version.ref}"
    )
    return FraudModel.load(payload, version=version.version, nthread=nthread)


def load_production_model(nthread: int = 1) -> FraudModel:
    return load_model(production_entry(), nthread=nthread)
