"""The registry steps of the two manufacturing models: register the shipped bundles once,
register trained ones through the promotion gate, load production from verified bytes."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session
from verticals.core.config import get_settings as core_settings
from verticals.core.errors import ModelUnavailable
from verticals.core.registry import ModelCard, ModelVersion, production_version
from verticals.core.registry.bundle import (
    ShippedBundle,
    card_path,
    ensure_bundle_shipped,
    load_bundle_payloads,
    register_trained_bundle,
    write_bundle,
)
from verticals.core.registry.gate import PromotionGate
from verticals.core.registry.shipping import Promotion
from verticals.domains.manufacturing import NAME

RUL = "rul"
FAILURE = "failure"
MODELS = (RUL, FAILURE)
SHIPPED_DIR = Path(__file__).resolve().parents[3] / "shared_models" / NAME
# what each model is judged on when a trained version asks to replace production
PROMOTION = {
    RUL: PromotionGate(f"{NAME}/{RUL}", higher_is_better=False),
    FAILURE: PromotionGate(f"{NAME}/{FAILURE}", higher_is_better=True),
}
PROMOTION_METRIC = {RUL: "val_rmse", FAILURE: "inner_f1"}
SUFFIXES = {"weights": ".safetensors", "xgb": ".ubj", "profile": ".json", "modes": ".ubj"}


def shipped_folder(name: str, root: Path | None = None) -> Path:
    return (root or SHIPPED_DIR) / name


def ensure_shipped(root: Path | None = None) -> dict[str, str]:
    """Register each shipped bundle that is new here (race-safe); the production versions."""
    cards = {name: card_path(shipped_folder(name, root), name) for name in MODELS}
    return {
        name: ensure_bundle_shipped(domain=NAME, card_file=card_file).version
        for name, card_file in cards.items()
        if card_file.is_file()
    }


def _write(card_file: Path, card: ModelCard, payloads: dict[str, bytes]) -> ShippedBundle:
    """``<name>.<kind><suffix>`` beside the card; the network's weights are the primary file
    when there are any, else the boosted model."""
    primary = "weights" if "weights" in payloads else "xgb"
    filenames = {kind: f"{card.name}.{kind}{SUFFIXES.get(kind, '.bin')}" for kind in payloads}
    return write_bundle(card_file, card, payloads, primary=primary, filenames=filenames)


def ship(name: str, card: ModelCard, payloads: dict[str, bytes], root: Path) -> ShippedBundle:
    """Write a bundle to ``root/name`` (``--ship``): what ``ensure_shipped`` registers later."""
    return _write(card_path(shipped_folder(name, root), name), card, payloads)


def register_trained(
    session: Session, name: str, card: ModelCard, payloads: dict[str, bytes]
) -> Promotion:
    """Write a trained bundle under the home folder's artifacts (a folder per version) and
    register it; promoted when its validation metric is at least production's (core's gate)."""
    folder = core_settings().artifacts_dir / NAME / name / card.version
    bundle = _write(card_path(folder, name), card, payloads)
    return register_trained_bundle(
        session,
        domain=NAME,
        folder=folder,
        bundle=bundle,
        metric=PROMOTION_METRIC[name],
        gate=PROMOTION[name],
    )


def load_production(session: Session, name: str) -> tuple[dict[str, bytes], ModelVersion]:
    """The production bundle's files, each checked against its registered sha256."""
    version = production_version(session, NAME, name)
    if version is None:
        raise ModelUnavailable(f"no production model for {NAME}/{name}")
    return load_bundle_payloads(session, version), version
