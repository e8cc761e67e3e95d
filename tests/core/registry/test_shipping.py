"""ensure_shipped: a shipped baseline registered once, from the checked bytes, promoted by the
domain's rule, and safe when several replicas start at once."""

from __future__ import annotations

import hashlib
import threading

import pytest
from verticals.core.db import session_scope
from verticals.core.errors import IntegrityError
from verticals.core.registry import (
    ModelCard,
    list_versions,
    production_version,
    promote,
    register,
    shipping,
)
from verticals.core.registry.shipping import ensure_shipped

PAYLOAD = b'{"weights": [1, 2, 3]}'


def _ship(version: str = "2", payload: bytes = PAYLOAD, **options) -> str:  # noqa: ANN003
    shipped = ensure_shipped(
        domain="d",
        name="m",
        card=ModelCard(name="m", version=version, metrics={"auc": 0.8}),
        sha256=hashlib.sha256(payload).hexdigest(),
        payload=lambda: payload,
        filename="model.json",
        extra={"kind": "test"},
        **options,
    )
    return shipped.version


def test_registered_once_from_the_checked_bytes_and_promoted(db):
    assert _ship() == "2"
    assert _ship() == "2"  # a restart: nothing new
    with session_scope() as session:
        versions = list_versions(session, "d", "m")
    assert [(v.version, v.stage, v.extra["source"]) for v in versions] == [
        ("2", "production", "shipped")
    ]
    assert versions[0].sha256 == hashlib.sha256(PAYLOAD).hexdigest()


def test_a_newer_shipped_release_replaces_an_older_shipped_one_not_a_trained_one(db, tmp_path):
    _ship("1")
    assert _ship("2") == "2"  # upgrade: the older shipped baseline gives way
    trained = tmp_path / "trained.json"
    trained.write_text("{}")
    with session_scope() as session:
        register(
            session,
            domain="d",
            name="m",
            version="3-local",
            artifact_path=trained,
            stage="production",
            extra={"source": "trained"},
        )
    assert _ship("4") == "3-local"  # a model trained here stays in production
    with session_scope() as session:
        assert {v.version: v.stage for v in list_versions(session, "d", "m")}["4"] == "staging"


def test_an_operators_rollback_stands(db):
    _ship("1")
    _ship("2")
    with session_scope() as session:
        promote(session, domain="d", name="m", version="1")
    assert _ship("2") == "1"


def test_bytes_that_change_after_the_check_are_refused(db, monkeypatch):
    real = shipping.install_artifact

    def swapped(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        target = real(*args, **kwargs)
        target.write_bytes(b"tampered")
        return target

    monkeypatch.setattr(shipping, "install_artifact", swapped)
    with pytest.raises(IntegrityError, match="differs from the shipped one"):
        _ship()
    with session_scope() as session:
        assert production_version(session, "d", "m") is None


def test_the_replica_that_loses_the_race_takes_what_the_winner_left(db, monkeypatch):
    _ship("2")
    monkeypatch.setattr(shipping, "_registered", lambda *args: False)  # checked before the winner
    assert _ship("2") == "2"


def test_replicas_starting_together_register_it_once(db):
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        try:
            results.append(_ship("7"))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and results == ["7"] * 4
    with session_scope() as session:
        assert [v.version for v in list_versions(session, "d", "m")] == ["7"]


def test_the_promotion_gate_takes_ties_and_refuses_worse_or_missing():
    from verticals.core.registry.gate import PromotionGate

    higher, lower = PromotionGate("d/m"), PromotionGate("d/m", higher_is_better=False)
    assert higher.accepts(0.8, 0.8) and higher.accepts(0.8, 0.81) and not higher.accepts(0.8, 0.79)
    assert lower.accepts(0.3, 0.2) and not lower.accepts(0.3, 0.31)
    assert higher.accepts(None, 0.5) and not higher.accepts(0.5, None)
    assert not higher.accepts(0.5, float("nan")) and higher.accepts(float("nan"), 0.5)
    with pytest.raises(ValueError, match="<domain>/<model>"):
        PromotionGate("no-slash")


def test_register_and_promote_by_the_gate(db, tmp_path):
    from verticals.core.registry.gate import PromotionGate
    from verticals.core.registry.shipping import register_and_promote

    def run(version: str, auc: float, baseline: float | None = None) -> bool:
        path = tmp_path / f"{version}.json"
        path.write_text(version)
        with session_scope() as session:
            return register_and_promote(
                session,
                domain="d",
                name="m",
                artifact_path=path,
                card=ModelCard(name="m", version=version, metrics={"auc": auc}),
                metric="auc",
                gate=PromotionGate("d/m"),
                baseline=baseline,
            ).promoted

    assert run("1", 0.80)  # nothing in production
    assert run("2", 0.80)  # a tie goes to the newer
    assert not run("3", 0.79)  # worse than production's registered 0.80
    assert run("4", 0.70, baseline=0.65)  # production measured afresh on the same data
    with session_scope() as session:
        stages = {v.version: v.stage for v in list_versions(session, "d", "m")}
    assert stages == {"1": "archived", "2": "archived", "3": "staging", "4": "production"}
