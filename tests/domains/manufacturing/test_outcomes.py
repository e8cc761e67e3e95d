"""Maintenance outcomes through core's labeling queue: scored readings of a machine tool are
queued by the model's doubt, and a planner's outcome labels the newest one."""

from __future__ import annotations

import pytest

API = "/v1/manufacturing"
RUN = {
    "type": "M",
    "air_temperature_k": 300.0,
    "process_temperature_k": 310.0,
    "rotational_speed_rpm": 1500,
    "torque_nm": 40.0,
    "tool_wear_min": 100,
}


@pytest.fixture
def writer(auth):
    return auth("manufacturing:read,manufacturing:write")


def _score(client, writer, **change):  # noqa: ANN001, ANN202
    r = client.post(f"{API}/machines:score", json={**RUN, **change}, headers=writer)
    assert r.status_code == 200, r.text
    return r.json()


def test_outcome_labels_the_newest_reading_and_supersedes_older(client, writer) -> None:
    client.post(
        f"{API}/assets", json={"asset_id": "mill_1", "kind": "machine_tool"}, headers=writer
    )
    first = _score(client, writer, asset_id="mill_1")
    _score(client, writer, asset_id="mill_1", torque_nm=62.0, rotational_speed_rpm=1290)
    _score(client, writer)  # no asset: nobody's reading, not queued
    queue = client.get(f"{API}/labels/queue", headers=writer).json()
    assert queue["n_items"] == 2
    assert all(i["subject"].startswith("mill_1@") for i in queue["items"])
    assert all(i["why"].startswith("uncertain") for i in queue["items"])
    assert first["failure_probability"] in [i["score"] for i in queue["items"]]

    r = client.post(
        f"{API}/assets/mill_1/outcome",
        json={"failed": True, "failure_modes": ["HDF"], "note": "spindle overheated"},
        headers=writer,
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["label"], out["failure_modes"]) == ("failure", ["HDF"])
    item = client.get(f"{API}/labels/items/{out['item_id']}", headers=writer).json()
    assert item["label"] == "failure" and item["history"][0]["note"] == "spindle overheated"
    # the older reading left the queue: the outcome speaks for the machine's latest state
    assert client.get(f"{API}/labels/queue", headers=writer).json()["n_items"] == 0
    counts = client.get(f"{API}/labels/counts", headers=writer).json()
    assert (counts["labelled"], counts["closed"]) == (1, 1)


def test_outcomes_refuse_what_they_cannot_label(client, writer) -> None:
    client.post(
        f"{API}/assets", json={"asset_id": "mill-2", "kind": "machine_tool"}, headers=writer
    )
    client.post(f"{API}/assets", json={"asset_id": "unit-1", "kind": "turbofan"}, headers=writer)
    r = client.post(f"{API}/assets/mill-2/outcome", json={"failed": False}, headers=writer)
    assert r.status_code == 404 and "no scored reading" in r.json()["error"]["message"]
    r = client.post(f"{API}/assets/unit-1/outcome", json={"failed": True}, headers=writer)
    assert r.status_code == 409
    assert (
        client.post(f"{API}/assets/nope/outcome", json={"failed": True}, headers=writer).status_code
        == 404
    )
    for bad in ({"failed": "yes"}, {"failed": True, "failure_modes": ["XYZ"]}, {}):
        r = client.post(f"{API}/assets/mill-2/outcome", json=bad, headers=writer)
        assert r.status_code == 422, bad
    _score(client, writer, asset_id="mill-2")
    (item,) = client.get(f"{API}/labels/queue", headers=writer).json()["items"]
    r = client.post(
        f"{API}/labels/items/{item['id']}/annotations", json={"label": "broken"}, headers=writer
    )
    assert r.status_code == 422 and "broken" in r.json()["error"]["message"]
    r = client.post(
        f"{API}/labels/items/{item['id']}/annotations", json={"label": "ok"}, headers=writer
    )
    assert r.status_code == 200 and r.json()["label"] == "ok"
