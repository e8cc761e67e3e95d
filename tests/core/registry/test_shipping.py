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
