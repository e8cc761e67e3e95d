"""The analysts' page through Streamlit's AppTest, on the test database."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _page() -> None:
    from verticals.domains.finance.plugin import FinanceDomain

    FinanceDomain().render_page()


def test_page_shows_queue_model_whatif_and_labels_in_one_click(
    client, score_key, review_key, auth, make_tx
) -> None:
    rows = [
        make_tx(i, amount=700.0 + i, tx_datetime="2018-08-01T02:00:00", customer_id=f"c{i}")
        for i in range(30)
    ]
    client.post("/v1/finance/transactions:batch", json={"transactions": rows},
                headers=auth(score_key))
    queue = client.get("/v1/finance/review-queue", headers=auth(review_key)).json()
    app = AppTest.from_function(_page, default_timeout=120)
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
        assert app.selectbox[0].value == first
        fraud_button = next(b for b in app.button if b.label == "Fraud")
        fraud_button.click().run()
        assert not app.exception, app.exception
        got = client.get(f"/v1/finance/transactions/{first}", headers=auth(score_key)).json()
        assert got["label"] is True
