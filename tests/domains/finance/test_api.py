from __future__ import annotations

import io

import pandas as pd
import pytest

SCORE = "/v1/finance/transactions:score"
BATCH = "/v1/finance/transactions:batch"


def test_score_answers_with_probability_decision_reasons(client, score_key, auth, make_tx) -> None:
    r = client.post(SCORE, json=make_tx(1), headers=auth(score_key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["transaction_id"] == "t1"
    assert 0.0 <= body["fraud_probability"] <= 1.0
    assert body["decision"] in ("approve", "review", "decline")
    assert body["model_version"]
    assert 1 <= len(body["reasons"]) <= 3
    reason = body["reasons"][0]
    assert set(reason) == {"feature", "value", "contribution", "phrase"} and reason["phrase"]


def test_score_is_idempotent_and_409_on_a_different_body(
    client, db, score_key, auth, make_tx
) -> None:
    from sqlalchemy import func, select
    from verticals.core.db import session_scope
    from verticals.core.db.models import PredictionRecordRow
    from verticals.domains.finance.tables import CustomerStateRow

    first = client.post(SCORE, json=make_tx(7), headers=auth(score_key))
    again = client.post(SCORE, json=make_tx(7), headers=auth(score_key))
    assert again.status_code == 200 and again.json() == first.json()
    clash = client.post(SCORE, json=make_tx(7, amount=43.0), headers=auth(score_key))
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "conflict"
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(PredictionRecordRow)) == 1
        state = s.get(CustomerStateRow, ("default", "c1"))
        assert sum(b[0] for b in state.buckets.values()) == 1  # scored (and counted) once


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": -1}, "amount"),
        ({"amount": 1e12}, "amount"),
        ({"amount": "12x"}, "amount"),
        ({"tx_datetime": "yesterday"}, "tx_datetime"),
        ({"tx_datetime": "1850-01-01T00:00:00"}, "tx_datetime"),
        ({"customer_id": 123}, "customer_id"),
        ({"terminal_id": ""}, "terminal_id"),
        ({"transaction_id": None}, "transaction_id"),
        ({"TX_FRAUD_SCENARIO": 1}, "TX_FRAUD_SCENARIO"),
    ],
)
def test_bad_input_is_422_naming_the_field(client, score_key, auth, make_tx, change, field) -> None:
    r = client.post(SCORE, json=make_tx(2, **change), headers=auth(score_key))
    assert r.status_code == 422, r.text
    assert field in r.json()["error"]["message"]


def test_missing_field_and_nan_and_inf(client, score_key, auth, make_tx) -> None:
    body = make_tx(3)
    del body["amount"]
    r = client.post(SCORE, json=body, headers=auth(score_key))
    assert r.status_code == 422 and "amount" in r.json()["error"]["message"]
    for literal in ("NaN", "Infinity", "-Infinity"):
        raw = (
            '{"transaction_id": "t3", "tx_datetime": "2018-08-01T10:00:00", '
            f'"customer_id": "c1", "terminal_id": "m1", "amount": {literal}}}'
        )
        r = client.post(
            SCORE, content=raw, headers={**auth(score_key), "content-type": "application/json"}
        )
        assert r.status_code == 422, (literal, r.text)
        assert "amount" in r.json()["error"]["message"]


def test_scopes(client, make_key, auth, make_tx) -> None:
    review_only = make_key(["finance:review"])
    other = make_key(["medical:*"])
    assert client.post(SCORE, json=make_tx(4)).status_code == 401
    assert client.post(SCORE, json=make_tx(4), headers=auth(other)).status_code == 403
    assert client.post(SCORE, json=make_tx(4), headers=auth(review_only)).status_code == 403
    score_only = make_key(["finance:score"])
    assert client.get("/v1/finance/review-queue", headers=auth(score_only)).status_code == 403


def test_batch_json_and_uploads(client, score_key, auth, make_tx) -> None:
    rows = [make_tx(i, customer_id=f"c{i % 3}", amount=10.0 + i) for i in range(20)]
    r = client.post(BATCH, json={"transactions": rows}, headers=auth(score_key))
    assert r.status_code == 200, r.text
    assert r.json()["n_transactions"] == 20
    assert [x["transaction_id"] for x in r.json()["results"]] == [f"t{i}" for i in range(20)]
    # raw handbook columns, as CSV (multipart) and Parquet (body)
    frame = pd.DataFrame(
        {
            "TRANSACTION_ID": [100, 101],
            "TX_DATETIME": pd.to_datetime(["2018-08-02 10:00:00", "2018-08-02 11:00:00"]),
            "CUSTOMER_ID": [5, 6],
            "TERMINAL_ID": [7, 8],
            "TX_AMOUNT": [12.5, 999.0],
        }
    )
    r = client.post(
        BATCH,
        files={"file": ("tx.csv", frame.to_csv(index=False).encode(), "text/csv")},
        headers=auth(score_key),
    )
    assert r.status_code == 200, r.text
    assert [x["transaction_id"] for x in r.json()["results"]] == ["100", "101"]
    buffer = io.BytesIO()
    frame.assign(TRANSACTION_ID=[200, 201]).to_parquet(buffer)
    r = client.post(
        BATCH,
        content=buffer.getvalue(),
        headers={**auth(score_key), "content-type": "application/vnd.apache.parquet"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["n_transactions"] == 2


def test_batch_limits_and_bad_rows(client, score_key, auth, make_tx) -> None:
    too_many = {"transactions": [make_tx(i) for i in range(10_001)]}
    r = client.post(BATCH, json=too_many, headers=auth(score_key))
    assert r.status_code == 413 and r.json()["error"]["details"]["field"] == "transactions"
    bad = {"transactions": [make_tx(1), make_tx(2, amount=-5)]}
    r = client.post(BATCH, json=bad, headers=auth(score_key))
    assert r.status_code == 422 and "transactions.1.amount" in r.json()["error"]["message"]
    csv = b"TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT\n1,2018-08-01,1,1,nan\n"
    r = client.post(BATCH, files={"file": ("x.csv", csv, "text/csv")}, headers=auth(score_key))
    assert r.status_code == 422 and r.json()["error"]["details"]["field"] == "amount"
    r = client.post(BATCH, content=b"x", headers={**auth(score_key), "content-type": "text/xml"})
    assert r.status_code == 415
    r = client.post(
        BATCH, content=b"{not json", headers={**auth(score_key), "content-type": "application/json"}
    )
    assert r.status_code == 400


def test_label_review_queue_and_get(client, score_key, review_key, auth, make_tx) -> None:
    # a large amount at night on a fresh card: the model should want a look
    rows = [make_tx(i, amount=900.0 + i, tx_datetime="2018-08-01T02:00:00") for i in range(5)]
    client.post(BATCH, json={"transactions": rows}, headers=auth(score_key))
    queue = client.get("/v1/finance/review-queue?limit=10", headers=auth(review_key)).json()
    # ordered by what a label is worth: the expected cost of a wrong automatic call
    priorities = [item["priority"] for item in queue["items"]]
    assert "t0" in [item["transaction_id"] for item in queue["items"]]
    assert priorities == sorted(priorities, reverse=True) and priorities[0] > 0
    assert all("expected cost of a wrong automatic call" in item["why"] for item in queue["items"])
    r = client.post(
        "/v1/finance/transactions/t0/label",
        json={"is_fraud": True, "analyst": "ann", "note": "confirmed"},
        headers=auth(review_key),
    )
    assert r.status_code == 200, r.text
    got = client.get("/v1/finance/transactions/t0", headers=auth(score_key)).json()
    assert got["label"] is True and got["customer_id"] == "c1"
    assert got["review_status"] == "resolved"
    after = client.get("/v1/finance/review-queue", headers=auth(review_key)).json()
    assert "t0" not in [item["transaction_id"] for item in after["items"]]
    assert client.get("/v1/finance/transactions/nope", headers=auth(score_key)).status_code == 404
    r = client.post("/v1/finance/transactions/nope/label", json={"is_fraud": True},
                    headers=auth(review_key))
    assert r.status_code == 404
    r = client.post("/v1/finance/transactions/t0/label", json={"is_fraud": "maybe"},
                    headers=auth(review_key))
    assert r.status_code == 422 and "is_fraud" in r.json()["error"]["message"]
    assert client.get("/v1/finance/review-queue?limit=0", headers=auth(review_key)).status_code == 422


def test_each_recorded_score_counts_in_the_prediction_metrics(client, score_key, auth, make_tx):
    from prometheus_client import REGISTRY
    from verticals.domains.finance.settings import MODEL_NAME

    first = client.post(SCORE, json=make_tx(900), headers=auth(score_key)).json()
    labels = {"domain": "finance", "model": MODEL_NAME, "version": first["model_version"]}
    before = REGISTRY.get_sample_value("verticals_predictions_total", labels)
    batch = {"transactions": [make_tx(901), make_tx(902), make_tx(903)]}
    assert client.post(BATCH, json=batch, headers=auth(score_key)).status_code == 200
    assert REGISTRY.get_sample_value("verticals_predictions_total", labels) == before + 3


def test_an_offset_is_applied_once_at_the_boundary(client, score_key, auth, make_tx):
    """14:00+02:00 is the same moment as 12:00 UTC: stored, featurised and returned as such."""
    sent = make_tx(950, tx_datetime="2018-09-01T14:00:00+02:00")
    assert client.post(SCORE, json=sent, headers=auth(score_key)).status_code == 200
    got = client.get("/v1/finance/transactions/t950", headers=auth(score_key)).json()
    assert got["tx_datetime"].startswith("2018-09-01T12:00:00")
