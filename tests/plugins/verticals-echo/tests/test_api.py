from __future__ import annotations

from sqlalchemy import func, select
from verticals.core.db import session_scope
from verticals.core.db.models import PredictionRecordRow

from verticals_echo import NAME


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_score_answers_and_is_recorded_once_per_request_id(client, make_key):
    headers = _auth(make_key([f"{NAME}:score"]))
    body = {"request_id": "r1", "values": [2, 0, 1]}
    first = client.post(f"/v1/{NAME}/score", json=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"score": 2.1, "model_version": "1"}
    assert client.post(f"/v1/{NAME}/score", json=body, headers=headers).json() == first.json()
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(PredictionRecordRow)) == 1


def test_bad_input_is_422_and_a_missing_scope_403(client, make_key):
    headers = {**_auth(make_key(["*"])), "content-type": "application/json"}
    nan = client.post(f"/v1/{NAME}/score", content=b'{"values": [NaN, 1, 2]}', headers=headers)
    assert nan.status_code == 422
    short = client.post(f"/v1/{NAME}/score", json={"values": [1, 2]}, headers=headers)
    assert short.status_code == 422 and short.json()["error"]["code"] == "invalid_input"
    reader = _auth(make_key([f"{NAME}:read"]))
    refused = client.post(f"/v1/{NAME}/score", json={"values": [1, 2, 3]}, headers=reader)
    assert refused.status_code == 403


def test_notes_round_trip(client, make_key):
    headers = _auth(make_key([f"{NAME}:write", f"{NAME}:read"]))
    created = client.post(f"/v1/{NAME}/notes", json={"text": "hello"}, headers=headers)
    assert created.status_code == 201, created.text
    listed = client.get(f"/v1/{NAME}/notes", headers=headers).json()["notes"]
    assert [n["text"] for n in listed] == ["hello"]
    assert client.post(f"/v1/{NAME}/notes", json={"text": ""}, headers=headers).status_code == 422


def test_the_router_is_documented(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {f"/v1/{NAME}/score", f"/v1/{NAME}/notes"} <= set(paths)
