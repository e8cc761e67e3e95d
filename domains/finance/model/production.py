"""The production model: register the shipped baseline on first use, load with sha256 check.

A release that ships a new baseline upgrades an existing database the way a training run does
(``shipping.register_run``): the shipped version is registered (once) and promoted when
production is an older shipped baseline, or when its unseen-window average precision is at least
production's. A model trained locally that scores better stays in production; a shipped version
already registered (say, rolled back by an operator) is never promoted again here.
"""

from __future__ import annotations

from pathlib import Path

from verticals.core.db import session_scope
from verticals.core.errors import ModelUnavailable
from verticals.core.registry import ModelCard, ModelVersion, production_version, read_verified
from verticals.core.registry.bundle import ShippedBundle, ensure_bundle_shipped, read_bundle
from verticals.core.registry.shipping import replaces_older_shipped
from verticals.domains.finance.model.fraud_model import FraudModel
from verticals.domains.finance.settings import MODEL_NAME
from verticals.shared_models.finance import CARD_FILE, MODEL_FILE

DOMAIN = "finance"
PROMOTION_METRIC = "average_precision"


def shipped_card() -> ShippedBundle:
    """The shipped card file (core's bundle card): the card, the model file and its sha256,
    and the training summary (``extra``)."""
    return read_bundle(CARD_FILE)


def _replaces(current: ModelVersion | None, card: ModelCard) -> bool:
    """Whether the shipped ``card`` takes over production: over nothing or an older shipped
    baseline, or when its unseen-window average precision is at least production's."""
    if replaces_older_shipped(current, card):
        return True
    assert current is not None
    new = card.metrics.get(PROMOTION_METRIC, float("-inf"))
    return new >= current.metrics.get(PROMOTION_METRIC, float("-inf"))


def ensure_production_model() -> str:
    """The production version, after registering the shipped baseline if it is new here."""
    if not (MODEL_FILE.is_file() and CARD_FILE.is_file()):
        with session_scope() as session:
            current = production_version(session, DOMAIN, MODEL_NAME)
        if current is None:
            raise ModelUnavailable(
                "the shipped finance model is missing from shared_models/finance"
            )
        return current.version
    return ensure_bundle_shipped(domain=DOMAIN, card_file=CARD_FILE, replaces=_replaces).version


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
