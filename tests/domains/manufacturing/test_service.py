"""The use cases without HTTP: tenants apart, dead letters kept, histories for the page,
concurrent writers of the same cycles."""

from __future__ import annotations

import threading

import pytest
from verticals.core.auth import Principal
from verticals.core.errors import NotFound

from .conftest import reading


def _turbofan(service, actor, asset_id="e1", cycles=30):  # noqa: ANN001, ANN202
    from verticals.domains.manufacturing.schemas import AssetIn, TurbofanReading

    service.register_asset(actor, AssetIn(asset_id=asset_id, kind="turbofan"))
    batch = [TurbofanReading(**reading(c)) for c in range(1, cycles + 1)]
    return service.ingest_readings(actor, asset_id, batch)


def test_tenants_see_only_their_own_assets(service, principal):
    other = Principal(name="plant-b", scopes=["manufacturing:*"], tenant="plant-b")
    _turbofan(service, principal, "shared-name")
    _turbofan(service, other, "shared-name", cycles=10)
    assert [a.asset_id for a in service.list_assets(other)] == ["shared-name"]
    assert service.health(principal, "shared-name").last_cycle == 30
    assert service.health(other, "shared-name").last_cycle == 10
    assert service.fleet(other).total == 1
    _turbofan(service, principal, "only-a")
    with pytest.raises(NotFound):
        service.health(other, "only-a")


def test_dead_letters_keep_an_excerpt_and_the_reason_per_tenant(service, principal):
    service.record_dead_letter(
        "plant-a", source="mqtt", topic="plant/e1/readings", error="bad JSON", payload=b"{" * 5000
    )
    [letter] = service.dead_letters(principal)
    assert letter.error == "bad JSON" and letter.payload_bytes == 5000
    assert len(letter.payload_excerpt) == 2000
    assert service.dead_letters(Principal(name="b", scopes=[], tenant="plant-b")) == []


def test_asset_history_holds_the_rul_trajectory_and_normalised_sensors(service, principal):
    _turbofan(service, principal, cycles=25)
    history = service.asset_history(principal, "e1")
    assert history.cycles == list(range(1, 26))
    assert len(history.rul) == len(history.rul_low) == len(history.zscores) == 25
    assert all(
        lo <= r <= hi
        for lo, r, hi in zip(history.rul_low, history.rul, history.rul_high, strict=True)
    )
    assert len(history.zscores[0]) == len(history.used_sensors) > 0


def test_concurrent_writers_of_the_same_cycles_store_each_once(service, principal):
    from verticals.domains.manufacturing.schemas import AssetIn, TurbofanReading

    service.register_asset(principal, AssetIn(asset_id="e2", kind="turbofan"))
    batch = [TurbofanReading(**reading(c)) for c in range(1, 51)]
    results, errors = [], []

    def send() -> None:
        try:
            results.append(service.ingest_readings(principal, "e2", batch))
        except Exception as exc:  # noqa: BLE001 - collected and asserted on
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(r.accepted for r in results) == 50
    assert all(r.accepted + r.unchanged == 50 for r in results)


def test_a_health_estimate_is_recorded_once_as_a_prediction(service, principal):
    from sqlalchemy import func, select
    from verticals.core.db import session_scope
    from verticals.core.db.models import PredictionRecordRow

    _turbofan(service, principal)
    for _ in range(3):
        service.health(principal, "e1")
    service.fleet(principal)
    with session_scope() as session:
        recorded = session.scalar(
            select(func.count()).where(PredictionRecordRow.domain == "manufacturing")
        )
    assert recorded == 1
