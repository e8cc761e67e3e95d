"""Shadow evaluation on finance: transactions scored through the API, a staged challenger (the
production artifact registered again) scores those served after it was staged from their
stored features, and the report compares both on the same labelled transactions."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner
from verticals.core.db import session_scope
from verticals.core.labeling.shadow import shadow_score
from verticals.core.registry.store import production_version, register

BATCH = "/v1/finance/transactions:batch"
MODEL = "card-fraud-xgb"


def _score(client, key, auth, rows) -> None:
    r = client.post(BATCH, json={"transactions": rows}, headers=auth(key))
    assert r.status_code == 200, r.text


def _stage_production_again() -> str:
    with session_scope() as session:
        champion = production_version(session, "finance", MODEL)
        assert champion is not None
        register(
            session,
            domain="finance",
            name=MODEL,
            version="shadow-challenger",
            artifact_path=champion.artifact_path,
            card=champion.card,
            stage="staging",
        )
        return champion.version


def test_staged_challenger_scores_live_traffic_in_shadow(
    client, make_key, score_key, review_key, auth, make_tx
):
    before = [make_tx(i, amount=10.0 + i, tx_datetime="2018-08-01T02:00:00") for i in range(3)]
    _score(client, score_key, auth, before)
    champion = _stage_production_again()
    after = [
        make_tx(
            10 + i,
            customer_id=f"c{i % 3}",
            amount=5.0 + 97.0 * i,
            tx_datetime="2018-08-02T03:00:00",
        )
        for i in range(8)
    ]
    answers = client.post(BATCH, json={"transactions": after}, headers=auth(score_key))
    assert answers.status_code == 200
    assert "shadow" not in answers.text

    run = shadow_score(client.app.state.plugins, "finance")
    assert (run.version, run.champion_version, run.scored, run.total) == (
        "shadow-challenger",
        champion,
        8,
        8,
    )
    assert shadow_score(client.app.state.plugins, "finance").scored == 0  # never twice

    ops = make_key(["ops:read"])
    labels = {"t10": True, "t11": False, "t12": True, "t13": False, "t0": True}  # t0: before
    for tid, is_fraud in labels.items():
        r = client.post(
            f"/v1/finance/transactions/{tid}/label",
            json={"is_fraud": is_fraud},
            headers=auth(review_key),
        )
        assert r.status_code == 200, r.text
    report = client.get("/v1/ops/shadow?domain=finance", headers=auth(ops))
    assert report.status_code == 200, report.text
    body = report.json()
    assert (body["version"], body["stage"], body["positive_label"]) == (
        "shadow-challenger",
        "staging",
        "fraud",
    )
    assert (body["shadowed"], body["n"], body["positives"], body["unlabelled"]) == (8, 4, 2, 4)
    assert body["champion_versions"] == [champion]
    # the same model on the stored feature rows gives back what was served
    assert body["mean_abs_score_difference"] == pytest.approx(0.0, abs=1e-6)
    for metric in ("average_precision", "roc_auc"):
        assert body["challenger"][metric] == pytest.approx(body["champion"][metric], abs=1e-9)

    # API answers are unaffected: a replay returns what was served before the shadow run
    replay = client.post(BATCH, json={"transactions": after}, headers=auth(score_key))
    assert replay.json() == answers.json()

    assert client.get("/v1/ops/shadow?domain=finance", headers=auth(score_key)).status_code == 403
    missing = client.get("/v1/ops/shadow?domain=finance&version=nope", headers=auth(ops))
    assert missing.status_code == 404
    assert client.get("/v1/ops/shadow?domain=nope", headers=auth(ops)).status_code == 404
    wrong = client.get("/v1/ops/shadow?domain=finance&model=other", headers=auth(ops))
    assert wrong.status_code == 422 and "cannot shadow" in wrong.json()["error"]["message"]


def test_shadow_from_the_cli(client, score_key, auth, make_tx):
    from verticals.apps.cli.main import build_cli

    cli = build_cli()
    idle = CliRunner().invoke(cli, ["retrain", "finance", "--shadow", "--json"])
    assert idle.exit_code == 0, idle.output  # nothing staged: a scheduled run just ends
    assert "no staged challenger" in json.loads(idle.output.strip().splitlines()[-1])["detail"]
    _stage_production_again()
    _score(
        client, score_key, auth, [make_tx(i, tx_datetime="2018-08-03T09:00:00") for i in range(4)]
    )
    result = CliRunner().invoke(cli, ["retrain", "finance", "--shadow", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert out["run"]["scored"] == 4 and out["shadowed"] == 4 and out["n"] == 0
    assert out["note"] == "no labelled shadowed subjects yet"
