"""The analysts' page through Streamlit's AppTest, on the test database."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _page(viewer) -> None:  # noqa: ANN001 - a Principal, pickled into the script run
    from verticals.domains.finance.plugin import FinanceDomain

    FinanceDomain().render_page(viewer)


def test_page_shows_queue_model_whatif_and_labels_in_one_click(
    client, score_key, review_key, auth, make_tx, make_user
) -> None:
    rows = [
        make_tx(i, amount=700.0 + i, tx_datetime="2018-08-01T02:00:00", customer_id=f"c{i}")
        for i in range(30)
    ]
    client.post(
        "/v1/finance/transactions:batch", json={"transactions": rows}, headers=auth(score_key)
    )
    queue = client.get("/v1/finance/review-queue", headers=auth(review_key)).json()
    analyst = make_user("fraud-analyst", "ana")
    app = AppTest.from_function(_page, args=(analyst.principal,), default_timeout=120)
    app.run()
    assert not app.exception, app.exception
    assert app.title[0].value == "Card fraud"
    assert len(app.tabs) == 3
    assert app.slider[0].value == 0.5
    assert any("alerts / day" == m.label for m in app.metric)
    app.slider[0].set_value(0.2).run()
    assert not app.exception, app.exception
    assert queue["n_items"] > 0  # large night-time amounts on fresh cards get reviewed
    if queue["n_items"]:
        first = queue["items"][0]["transaction_id"]
        items = client.get("/v1/finance/labels/queue", headers=auth(review_key)).json()
        assert items["items"][0]["subject"] == first  # the same order as the API's queue
        assert app.selectbox[0].value == items["items"][0]["id"]
        queue_table = next(df.value for df in app.dataframe if "why" in df.value.columns)
        assert queue_table["why"].str.contains("expected cost of a wrong automatic call").all()
        fraud_button = next(b for b in app.button if b.label == "Fraud")
        fraud_button.click().run()
        assert not app.exception, app.exception
        got = client.get(f"/v1/finance/transactions/{first}", headers=auth(score_key)).json()
        assert got["label"] is True
        _assert_labelled_by(first, analyst.principal)


def _assert_labelled_by(transaction_id: str, analyst) -> None:  # noqa: ANN001
    """The label and its audit name the signed-in analyst: their user id, role and tenant."""
    from sqlalchemy import select
    from verticals.core.audit import recent_actions
    from verticals.core.db import session_scope
    from verticals.core.labeling.tables import LabelAnnotationRow, LabelItemRow

    with session_scope() as session:
        label = session.scalar(
            select(LabelAnnotationRow)
            .join(LabelItemRow, LabelItemRow.id == LabelAnnotationRow.item_id)
            .where(LabelItemRow.subject == transaction_id)
        )
        actions = recent_actions(session, user_id=analyst.user_id)
    assert label.labeller == "ana" and label.api_key_id is None and label.label == "fraud"
    labelled = [a for a in actions if a.action == "label"]
    assert [(a.target, a.role, a.tenant, a.domain) for a in labelled] == [
        (transaction_id, "fraud-analyst", "default", "finance")
    ]


def test_viewer_sees_the_queue_but_cannot_label(client, score_key, auth, make_tx, make_user):
    rows = [
        make_tx(i, amount=900.0 + i, tx_datetime="2018-08-01T03:00:00", customer_id=f"v{i}")
        for i in range(10)
    ]
    client.post(
        "/v1/finance/transactions:batch", json={"transactions": rows}, headers=auth(score_key)
    )
    viewer = make_user("viewer", "vic")
    app = AppTest.from_function(_page, args=(viewer.principal,), default_timeout=120)
    app.run()
    assert not app.exception, app.exception
    assert not [b for b in app.button if b.label in ("Fraud", "Legit")]
    assert any("read only" in c.value for c in app.caption)
