"""Every prediction is recorded before the answer; idempotent retries replay the stored one."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select
from verticals.core.db import session_scope
from verticals.core.db.models import PredictionRecordRow


def _count() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(PredictionRecordRow))


def test_prediction_is_recorded_with_who_what_and_model(client, make_key):
    key = make_key(["echo:score"])
    response = client.post(
        "/v1/echo/score", json={"values": [1, 2, 3]}, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200
    with session_scope() as session:
        row = session.scalars(select(PredictionRecordRow)).one()
    assert row.domain == "echo"
    assert row.route == "POST /v1/echo/score"
    assert row.model_version == "1"
    assert row.output == response.json()
    assert row.request_id == response.headers["x-request-id"]
    assert len(row.input_sha256) == 64
    assert row.api_key_id is not None
    assert row.latency_ms >= 0


def test_idempotent_retry_returns_stored_answer_and_conflicts_on_other_body(client, make_key):
    headers = {"Authorization": f"Bearer {make_key(['*'])}"}
    first = client.post(
        "/v1/echo/score", json={"request_id": "r1", "values": [1, 2, 3]}, headers=headers
    )
    again = client.post(
        "/v1/echo/score", json={"request_id": "r1", "values": [1, 2, 3]}, headers=headers
    )
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert _count() == 1
    other = client.post(
        "/v1/echo/score", json={"request_id": "r1", "values": [9, 9, 9]}, headers=headers
    )
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "conflict"
    assert _count() == 1


def test_concurrent_retries_record_once(client, make_key):
    headers = {"Authorization": f"Bearer {make_key(['*'])}"}
    body = {"request_id": "same", "values": [3, 2, 1]}
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(
            pool.map(lambda _: client.post("/v1/echo/score", json=body, headers=headers), range(16))
        )
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1
    assert _count() == 1
