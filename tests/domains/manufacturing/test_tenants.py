"""Two plants on one deployment: each sees only its own assets through every route."""

from __future__ import annotations

from .conftest import DEMO_ENGINES, reading

API = "/v1/manufacturing"


def test_each_tenant_sees_only_its_own_assets_through_every_route(client, make_key):
    scopes = ["manufacturing:read", "manufacturing:write"]
    plant_a = {"Authorization": f"Bearer {make_key(scopes, tenant='plant-a')}"}
    plant_b = {"Authorization": f"Bearer {make_key(scopes, tenant='plant-b')}"}
    upload = client.post(
        f"{API}/readings:upload",
        files={"file": ("t.txt", DEMO_ENGINES.read_bytes())},
        headers=plant_a,
    )
    assert upload.status_code == 200
    client.post(
        f"{API}/assets", json={"asset_id": "mill-1", "kind": "machine_tool"}, headers=plant_a
    )

    assert client.get(f"{API}/assets", headers=plant_b).json() == {"assets": []}
    assert client.get(f"{API}/fleet", headers=plant_b).json() == {"assets": [], "total": 0}
    assert client.get(f"{API}/assets/unit-1/health", headers=plant_b).status_code == 404
    sent = client.post(
        f"{API}/assets/unit-1/readings", json={"readings": [reading(1)]}, headers=plant_b
    )
    assert sent.status_code == 404
    machine = {
        "type": "M",
        "air_temperature_k": 300.0,
        "process_temperature_k": 310.0,
        "rotational_speed_rpm": 1500,
        "torque_nm": 40.0,
        "tool_wear_min": 10,
        "asset_id": "mill-1",
    }
    assert client.post(f"{API}/machines:score", json=machine, headers=plant_b).status_code == 404

    # the same ids in plant B are plant B's own assets, with their own readings
    own = client.post(
        f"{API}/readings:upload",
        files={"file": ("t.txt", DEMO_ENGINES.read_bytes())},
        headers=plant_b,
    ).json()
    assert own["assets_created"][:1] == ["unit-1"] and own["unchanged"] == 0
    assert client.get(f"{API}/fleet", headers=plant_a).json()["total"] == 13
    assert client.get(f"{API}/fleet", headers=plant_b).json()["total"] == 12
