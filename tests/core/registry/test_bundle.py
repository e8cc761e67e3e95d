"""Bundles: a model shipped as several files, each registered and loaded through its sha256."""

from __future__ import annotations

import pytest
from verticals.core.db import session_scope
from verticals.core.errors import IntegrityError
from verticals.core.registry import ModelCard, list_derived, production_version
from verticals.core.registry.bundle import (
    ShippedBundle,
    ensure_bundle_shipped,
    load_bundle_payloads,
    read_bundle,
    register_trained_bundle,
    write_bundle,
)
from verticals.core.registry.gate import PromotionGate

PAYLOADS = {"weights": b"\x00\x01weights", "profile": b'{"mean": [1.0]}'}
FILENAMES = {"weights": "rul.weights.safetensors", "profile": "rul.profile.json"}


def _write(folder, version="1", payloads=PAYLOADS, metrics=None) -> ShippedBundle:  # noqa: ANN001
    card = ModelCard(name="rul", version=version, metrics=metrics or {"val_rmse": 14.0})
    return write_bundle(
        folder / "rul.card.json",
        card,
        payloads,
        primary="weights",
        filenames=FILENAMES,
        extra={"task": "rul"},
    )


def test_shipped_bundle_registers_every_file_and_loads_them_verified(db, tmp_path):
    written = _write(tmp_path / "ship")
    assert read_bundle(tmp_path / "ship" / "rul.card.json") == written
    assert sorted(p.name for p in (tmp_path / "ship").iterdir()) == [
        "rul.card.json",
        "rul.profile.json",
        "rul.weights.safetensors",
    ]
    version = ensure_bundle_shipped(
        domain="manufacturing", card_file=tmp_path / "ship" / "rul.card.json"
    )
    assert version.version == "1" and version.stage == "production"
    assert version.extra["task"] == "rul" and version.extra["primary"] == "weights"
    with session_scope() as session:
        assert load_bundle_payloads(session, version) == PAYLOADS
        assert [d.kind for d in list_derived(session, version)] == ["profile"]
    # a second start registers nothing new
    again = ensure_bundle_shipped(
        domain="manufacturing", card_file=tmp_path / "ship" / "rul.card.json"
    )
    assert again.version == "1"


def test_a_changed_derived_file_is_refused_at_load(db, tmp_path):
    version = ensure_bundle_shipped(domain="manufacturing", card_file=_card(tmp_path))
    with session_scope() as session:
        [profile] = list_derived(session, version)
    with open(profile.path, "ab") as tampered:
        tampered.write(b" ")
    with session_scope() as session, pytest.raises(IntegrityError):
        load_bundle_payloads(session, version)


def test_a_shipped_file_that_differs_from_its_card_is_never_registered(db, tmp_path):
    card_file = _card(tmp_path)
    (card_file.parent / "rul.profile.json").write_bytes(b"{}")
    with pytest.raises(IntegrityError):
        ensure_bundle_shipped(domain="manufacturing", card_file=card_file)
    with session_scope() as session:
        assert production_version(session, "manufacturing", "rul") is None


def test_a_trained_bundle_is_promoted_only_through_the_gate(db, tmp_path):
    ensure_bundle_shipped(domain="manufacturing", card_file=_card(tmp_path))
    gate = PromotionGate("manufacturing/rul", higher_is_better=False)
    worse = _write(tmp_path / "worse", version="2", metrics={"val_rmse": 15.0})
    better = _write(tmp_path / "better", version="3", metrics={"val_rmse": 13.0})
    with session_scope() as session:
        refused = register_trained_bundle(
            session,
            domain="manufacturing",
            folder=tmp_path / "worse",
            bundle=worse,
            metric="val_rmse",
            gate=gate,
        )
        accepted = register_trained_bundle(
            session,
            domain="manufacturing",
            folder=tmp_path / "better",
            bundle=better,
            metric="val_rmse",
            gate=gate,
        )
    assert not refused.promoted and accepted.promoted
    with session_scope() as session:
        production = production_version(session, "manufacturing", "rul")
        assert production is not None and production.version == "3"
        assert load_bundle_payloads(session, production) == PAYLOADS


def test_a_card_whose_primary_is_not_listed_is_invalid():
    with pytest.raises(ValueError, match="primary"):
        ShippedBundle(card=ModelCard(name="m", version="1"), primary="weights", files={})


def _card(tmp_path):  # noqa: ANN001, ANN202
    _write(tmp_path / "ship")
    return tmp_path / "ship" / "rul.card.json"
