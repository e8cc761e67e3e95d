"""The finance API as its OpenAPI states it: strict types, the documented date range, datetimes
with an offset, a batch schema whose references resolve."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

SCORE = "/v1/finance/transactions:score"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": False}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": "12.5"}, "amount"),
        ({"tx_datetime": "2100-12-31T23:59:59-14:00"}, "tx_datetime"),  # 2101 in UTC
        ({"tx_datetime": 1533117600}, "tx_datetime"),  # a Unix time is not ISO 8601
        ({"tx_datetime": "2000-01-01T00:00:00+01:00"}, "tx_datetime"),  # 1999 in UTC
    ],
)
def test_loose_values_are_refused(client, score_key, auth, make_tx, change, field):
    r = client.post(SCORE, json=make_tx(1, **change), headers=auth(score_key))
    assert r.status_code == 422, r.text
    assert field in r.json()["error"]["message"]


def test_an_integer_amount_is_a_number(client, score_key, auth, make_tx):
    r = client.post(SCORE, json=make_tx(2, amount=12), headers=auth(score_key))
    assert r.status_code == 200, r.text


def test_a_label_is_a_boolean(client, score_key, review_key, auth, make_tx):
    assert client.post(SCORE, json=make_tx(3), headers=auth(score_key)).status_code == 200
    label = "/v1/finance/transactions/t3/label"
    for loose in (0, 1, "true", None):
        r = client.post(label, json={"is_fraud": loose}, headers=auth(review_key))
        assert r.status_code == 422, (loose, r.text)
    r = client.post(label, json={"is_fraud": True}, headers=auth(review_key))
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["labelled_at"]).utcoffset() == timedelta(0)


def test_datetimes_come_back_with_their_offset(client, score_key, auth, make_tx):
    body = make_tx(4, tx_datetime="2018-08-01T12:00:00+02:00")
    assert client.post(SCORE, json=body, headers=auth(score_key)).status_code == 200
    r = client.get("/v1/finance/transactions/t4", headers=auth(score_key))
    assert r.status_code == 200, r.text
    assert datetime.fromisoformat(r.json()["tx_datetime"]) == datetime(2018, 8, 1, 10, tzinfo=UTC)
    assert r.json()["tx_datetime"].endswith("Z")


def test_the_openapi_states_the_range_and_its_references_resolve(client):
    spec = client.get("/openapi.json").json()
    batch = spec["paths"]["/v1/finance/transactions:batch"]["post"]["requestBody"]
    schema = batch["content"]["application/json"]["schema"]
    assert schema["properties"]["transactions"]["items"] == {
        "$ref": "#/components/schemas/TransactionIn"
    }
    tx = spec["components"]["schemas"]["TransactionIn"]["properties"]
    assert tx["tx_datetime"]["pattern"].startswith("^(200")
    assert tx["amount"]["type"] == "number"

    def refs(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    for ref in refs(spec):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[1] in spec["components"]["schemas"], ref
