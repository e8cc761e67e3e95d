"""The production model: register the shipped baseline on first use, load with sha256 check.

A release that ships a new baseline upgrades an existing database the way a training run does
(``shipping.register_run``): the shipped version is registered (once) and promoted when
production is an older shipped baseline, or when its unseen-window average precision is at least
production's. A model trained locally that scores better stays in production; a shipped version
already registered (say, rolled back by an operator) is never promoted again here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session
from verticals.core.config import get_settings
from verticals.core.db import session_scope
from verticals.core.errors import Conflict, IntegrityError, ModelUnavailable, NotFound
from verticals.core.registry import (
    ModelCard,
    ModelVersion,
    get_version,
    production_version,
    promote,
    read_verified,
    register,
)
from verticals.domains.finance.config import MODEL_NAME
from verticals.domains.finance.model import FraudModel
from verticals.shared_models.finance import CARD_FILE, MODEL_FILE

DOMAIN = "finance"
PROMOTION_METRIC = "average_precision"


def shipped_card() -> dict[str, Any]:
    """The shipped card file: ``{"card": ModelCard, "sha256", "artifact", "training"}``."""
    return json.loads(CARD_FILE.read_text())


def _registered(session: Session, version: str) -> bool:
    try:
        get_version(session, DOMAIN, MODEL_NAME, version)
    except NotFound:
        return False
    return True


def _replaces(current: ModelVersion | None, card: ModelCard) -> bool:
    """Whether the newly registered shipped ``card`` should take over production."""
    if current is None:
        return True
    if (current.extra or {}).get("source") == "shipped" and card.version > current.version:
        return True
    new = card.metrics.get(PROMOTION_METRIC, float("-inf"))
    return new >= current.metrics.get(PROMOTION_METRIC, float("-inf"))


def ensure_production_model() -> str:
    """The production version, after registering the shipped baseline if it is new here."""
    have_files = MODEL_FILE.is_file() and CARD_FILE.is_file()
    shipped = shipped_card() if have_files else None
    with session_scope() as session:
        current = production_version(session, DOMAIN, MODEL_NAME)
        if current is not None and (
            shipped is None or _registered(session, shipped["card"]["version"])
        ):
            return current.version
    if shipped is None:
        raise ModelUnavailable("the shipped finance model is missing from shared_models/finance")
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
                stage="staging",
                extra={"source": "shipped", "training": shipped.get("training", {})},
            )
            if version.sha256 != shipped["sha256"]:  # the target changed after our write
                raise IntegrityError(
                    "the registered finance model differs from the shipped one",
                    {"path": str(target), "expected": shipped["sha256"], "actual": version.sha256},
                )
            current = production_version(session, DOMAIN, MODEL_NAME)
            if _replaces(current, card):
                return promote(session, domain=DOMAIN, name=MODEL_NAME, version=card.version).version
            assert current is not None
            return current.version
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
