"""Two banks on one deployment: each sees, replays and labels only its own transactions, and
their cards never share online state, even under the same ids."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

SCORE = "/v1/finance/transactions:score"
BATCH = "/v1/finance/transactions:batch"
NIGHT = "2018-08-01T02:00:00"


@pytest.fixture
def bank_a(make_key) -> str:
    return make_key(["finance:*"], name="bank-a", tenant="bank-a")


@pytest.fixture
def bank_b(make_key) -> str:
    return make_key(["finance:*"], name="bank-b", tenant="bank-b")


def _risky(make_tx, i: int, **over) -> dict:  # noqa: ANN001 - the make_tx factory
    return make_tx(i, amount=900.0 + i, tx_datetime=NIGHT, customer_id=f"c{i}", **over)


def test_another_tenants_transaction_is_unknown_on_every_route(
    client, bank_a, bank_b, auth, make_tx
) -> None:
    first = client.post(SCORE, json=_risky(make_tx, 1), headers=auth(bank_a))
    assert first.status_code == 200, first.text
    assert client.get("/v1/finance/transactions/t1", headers=auth(bank_a)).status_code == 200
    assert client.get("/v1/finance/transactions/t1", headers=auth(bank_b)).status_code == 404
    label = client.post(
        "/v1/finance/transactions/t1/label", json={"is_fraud": True}, headers=auth(bank_b)
    )
    assert label.status_code == 404
    queue_a = client.get("/v1/finance/review-queue", headers=auth(bank_a)).json()
    queue_b = client.get("/v1/finance/review-queue", headers=auth(bank_b)).json()
    assert [i["transaction_id"] for i in queue_a["items"]] == ["t1"]
    assert queue_b["n_items"] == 0
    # A's transaction is still unlabelled: B's attempt touched nothing
    got = client.get("/v1/finance/transactions/t1", headers=auth(bank_a)).json()
    assert got["label"] is None and got["review_status"] == "pending"


def test_the_same_transaction_id_in_two_tenants_is_two_transactions(
    client, bank_a, bank_b, auth, make_tx
) -> None:
    a = client.post(SCORE, json=make_tx(5, amount=10.0), headers=auth(bank_a))
    # another body under the same id: B's own transaction, not A's answer and not a 409
    b = client.post(SCORE, json=make_tx(5, amount=20.0), headers=auth(bank_b))
    assert a.status_code == b.status_code == 200, b.text
    assert client.get("/v1/finance/transactions/t5", headers=auth(bank_a)).json()["amount"] == 10.0
    assert client.get("/v1/finance/transactions/t5", headers=auth(bank_b)).json()["amount"] == 20.0
    # each still replays its own and refuses its own id with another body
    assert client.post(SCORE, json=make_tx(5, amount=10.0), headers=auth(bank_a)).json() == a.json()
    clash = client.post(SCORE, json=make_tx(5, amount=30.0), headers=auth(bank_b))
    assert clash.status_code == 409
    batch = client.post(
        BATCH,
        json={"transactions": [make_tx(5, amount=20.0), make_tx(6, amount=7.0)]},
        headers=auth(bank_b),
    )
    assert batch.status_code == 200, batch.text
    assert batch.json()["results"][0] == b.json()
    assert client.get("/v1/finance/transactions/t6", headers=auth(bank_a)).status_code == 404
    labelled = client.post(
        "/v1/finance/transactions/t5/label", json={"is_fraud": True}, headers=auth(bank_b)
    )
    assert labelled.status_code == 200
    assert client.get("/v1/finance/transactions/t5", headers=auth(bank_a)).json()["label"] is None


def test_cards_of_two_banks_with_the_same_ids_share_no_state(
    client, bank_a, bank_b, auth, make_tx
) -> None:
    from verticals.core.db import session_scope
    from verticals.domains.finance.tables import CustomerStateRow, TerminalStateRow

    for i in range(4):
        r = client.post(SCORE, json=make_tx(i, amount=50.0), headers=auth(bank_a))
        assert r.status_code == 200
    fresh = client.post(SCORE, json=make_tx(100, amount=50.0), headers=auth(bank_b)).json()
    with session_scope() as s:
        counts = {
            tenant: sum(b[0] for b in s.get(table, (tenant, ident)).buckets.values())
            for tenant in ("bank-a", "bank-b")
            for table, ident in ((CustomerStateRow, "c1"),)
        }
        terminal_b = s.get(TerminalStateRow, ("bank-b", "m1"))
    assert counts == {"bank-a": 4, "bank-b": 1}
    assert sum(b[0] for b in terminal_b.buckets.values()) == 1
    assert fresh["transaction_id"] == "t100"


def test_an_expired_key_is_refused_with_401_saying_expired(client, db, auth) -> None:
    from datetime import timedelta

    from verticals.core.auth import create_key
    from verticals.core.db import session_scope
    from verticals.core.db.base import utcnow

    with session_scope() as session:
        key = create_key(
            session, "old", ["finance:*"], expires_at=utcnow() - timedelta(seconds=1)
        ).key
    r = client.get("/v1/finance/review-queue", headers=auth(key))
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]


def _page(viewer) -> None:  # noqa: ANN001 - a Principal, pickled into the script run
    from verticals.domains.finance.plugin import FinanceDomain

    FinanceDomain().render_page(viewer)


def test_the_page_shows_only_the_viewers_tenant(
    client, bank_a, bank_b, auth, make_tx, make_user
) -> None:
    rows_a = [_risky(make_tx, i, transaction_id=f"a{i}") for i in range(3)]
    rows_b = [_risky(make_tx, i, transaction_id=f"b{i}") for i in range(3)]
    client.post(BATCH, json={"transactions": rows_a}, headers=auth(bank_a))
    client.post(BATCH, json={"transactions": rows_b}, headers=auth(bank_b))
    queue_b = client.get("/v1/finance/review-queue", headers=auth(bank_b)).json()
    assert queue_b["n_items"] > 0
    analyst = make_user("fraud-analyst", "bea", tenant="bank-b")
    app = AppTest.from_function(_page, args=(analyst.principal,), default_timeout=120)
    app.run()
    assert not app.exception, app.exception
    shown = [option.split(" — ")[0] for option in app.selectbox[0].options]
    assert shown == [i["transaction_id"] for i in queue_b["items"]]
    assert all(t.startswith("b") for t in shown)
    frames = [f.value for f in app.dataframe]
    assert not any(
        str(v).startswith("a")
        for f in frames
        for column in ("transaction", "subject")
        if column in f
        for v in f[column]
    )
