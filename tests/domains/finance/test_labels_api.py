"""Finance's labeling queue routes (core's, mounted at /v1/finance/labels)."""

from __future__ import annotations

BATCH = "/v1/finance/transactions:batch"


def test_queue_assign_label_and_item_history(client, score_key, review_key, auth, make_tx):
    rows = [make_tx(i, amount=900.0 + i, tx_datetime="2018-08-01T02:00:00") for i in range(5)]
    assert (
        client.post(BATCH, json={"transactions": rows}, headers=auth(score_key)).status_code == 200
    )
    queue = client.get("/v1/finance/labels/queue", headers=auth(review_key)).json()
    assert queue["n_items"] >= 1
    first = queue["items"][0]
    assert first["strategy"] == "cost" and "expected cost" in first["why"]
    assert first["status"] == "pending" and first["label"] is None

    r = client.post(f"/v1/finance/labels/items/{first['id']}/assignment", headers=auth(review_key))
    assert r.status_code == 200 and r.json()["status"] == "assigned"
    r = client.post(
        f"/v1/finance/transactions/{first['subject']}/label",
        json={"is_fraud": True, "note": "card reported stolen"},
        headers=auth(review_key),
    )
    assert r.status_code == 200, r.text
    item = client.get(f"/v1/finance/labels/items/{first['id']}", headers=auth(review_key)).json()
    assert (item["label"], item["status"], item["agreement"]) == ("fraud", "labelled", 1.0)
    assert [h["note"] for h in item["history"]] == ["card reported stolen"]
    counts = client.get("/v1/finance/labels/counts", headers=auth(review_key)).json()
    assert counts["labelled"] == 1 and counts["pending"] == queue["n_items"] - 1


def test_bad_requests_are_4xx(client, score_key, review_key, auth):
    assert client.get("/v1/finance/labels/queue", headers=auth(score_key)).status_code == 403
    r = client.get("/v1/finance/labels/queue?model=nope", headers=auth(review_key))
    assert r.status_code == 422 and "model" in r.json()["error"]["message"]
    assert client.get("/v1/finance/labels/items/999", headers=auth(review_key)).status_code == 404
    # labelling goes through the transaction route (it updates the card's state)
    r = client.post(
        "/v1/finance/labels/items/1/annotations", json={"label": "fraud"}, headers=auth(review_key)
    )
    assert r.status_code in (404, 405)
    r = client.post("/v1/finance/labels/issues:scan?model=card-fraud-xgb", headers=auth(review_key))
    assert r.status_code == 200 and r.json()["flagged"] == []  # too few labels to judge
