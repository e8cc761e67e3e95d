"""Dashboard home, through Streamlit's AppTest, on the test database."""

from __future__ import annotations


def test_home_lists_domains_models_and_recent_predictions(app, client, make_key, signed_in):
    client.post(
        "/v1/echo/score", json={"values": [1, 2, 3]}, headers={"X-API-Key": make_key(["*"])}
    )
    signed_in(app, "admin")
    app.run()
    assert not app.exception, app.exception
    assert app.title[0].value == "verticals"
    frames = [df.value for df in app.dataframe]
    domains, models, metrics, recent = frames
    assert "echo" in set(domains["domain"])
    assert "echo/linear" in set(models["model"])
    assert "echo" in set(recent["domain"])
    # one model's metrics at a time, formatted: no empty cells, counts without decimals
    assert not metrics.isna().any().any() and list(metrics.columns) == ["metric", "value"]


def test_home_shows_each_domain_page_in_navigation(app, signed_in, pages):
    signed_in(app, "admin")
    app.run()
    assert not app.exception, app.exception
    registered = pages(app)
    assert "echo" in registered  # the default (home) page registers under ""
    app._page_hash = registered["echo"]
    app.run()
    assert not app.exception, app.exception
    assert app.header[0].value == "Echo (test plugin)"
