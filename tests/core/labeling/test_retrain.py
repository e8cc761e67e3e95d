"""The retraining orchestrator with a tiny recipe, the job queue, and the alert trigger."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from verticals.core.db import session_scope
from verticals.core.db.base import utcnow
from verticals.core.labeling.jobs import claim_next, drain, list_jobs, queue_job
from verticals.core.labeling.retrain import (
    Challenger,
    RetrainRecipe,
    TrainingSet,
    decide,
    retrain,
)
from verticals.core.labeling.tables import RetrainJobRow
from verticals.core.registry import ModelCard
from verticals.core.registry.gate import PromotionGate
from verticals.core.registry.store import (
    get_version,
    production_version,
    register,
    verified_artifact,
)


class TinyRecipe(RetrainRecipe):
    """A "model" is a number written to a file; its metric is that number."""

    domain = "tiny"
    models = ("m",)
    metric = "score"

    def __init__(self, folder: Path, value: float, *, onnx_drop: float | None = None) -> None:
        self.folder, self.value, self.onnx_drop = folder, value, onnx_drop

    def build(self, session, model, since, extra_data) -> TrainingSet:
        return TrainingSet(
            data=None,
            data_window="2024-01-01..2024-05-31",
            holdout_window="2024-06-01..2024-06-30",
            n_train=500,
            n_holdout=100,
            labels_used=7,
        )

    def train_challenger(self, training, model, version) -> Challenger:
        path = self.folder / f"{version}.txt"
        path.write_text(str(self.value))
        return Challenger(model=self.value, artifact=path, card=ModelCard(name=model))

    def load(self, version) -> float:
        return float(verified_artifact(version).read_text())

    def evaluate(self, model: Any, training) -> float:
        return float(model)

    def compression_target(self, challenger, training, model, version):
        if self.onnx_drop is None:
            return None
        import xgboost
        from verticals.core.compression.trees import TreeCompressionTarget

        rng = np.random.default_rng(0)
        X = rng.normal(size=(64, 3)).astype(np.float32)
        booster = xgboost.train(
            {"max_depth": 2, "nthread": 1, "objective": "binary:logistic"},
            xgboost.DMatrix(X, label=(X[:, 0] > 0).astype(int)),
            num_boost_round=3,
        )
        calls = iter((self.value, self.value - self.onnx_drop))  # native first, then ONNX

        def metric(predict):
            predict(X)
            return next(calls), self.metric

        return TreeCompressionTarget(
            name=f"tiny/{model}", booster=booster, rows=X, metric=metric, version=version
        )


def _champion(folder: Path, value: float, version: str = "1") -> None:
    path = folder / f"champion-{version}.txt"
    path.write_text(str(value))
    with session_scope() as session:
        register(
            session,
            domain="tiny",
            name="m",
            version=version,
            artifact_path=path,
            metrics={"score": value},
            stage="production",
        )


def test_better_challenger_is_promoted_with_its_lineage(db, tmp_path):
    _champion(tmp_path, 0.80)
    report = retrain(TinyRecipe(tmp_path, 0.85), trigger="alert", alert_id=3, job_id=9)
    assert report.decision == "promoted"
    assert (report.champion_version, report.champion_metric) == ("1", 0.80)
    assert report.challenger_metric == 0.85
    assert report.lineage.parent_version == "1" and report.lineage.labels_used == 7
    assert report.lineage.trigger == "alert" and report.lineage.alert_id == 3
    with session_scope() as session:
        current = production_version(session, "tiny", "m")
        old = get_version(session, "tiny", "m", "1")
    assert current is not None and current.version == report.challenger_version
    assert old.stage == "archived"
    assert current.extra["lineage"]["parent_version"] == "1"
    assert current.extra["lineage"]["data_window"] == "2024-01-01..2024-05-31"
    assert current.metrics["score"] == 0.85 and current.metrics["champion_score"] == 0.80
    note = current.card.changelog[report.challenger_version]
    assert "from 1 on 2024-01-01..2024-05-31 with 7 accepted labels" in note
    assert "2024-06-01..2024-06-30" in current.card.evaluation_data


def test_worse_challenger_stays_staged_with_the_reason(db, tmp_path):
    _champion(tmp_path, 0.80)
    report = retrain(TinyRecipe(tmp_path, 0.79))
    assert report.decision == "staged"
    assert "worse than the champion 0.8000 by 0.0100" in report.reason
    with session_scope() as session:
        assert production_version(session, "tiny", "m").version == "1"
        staged = get_version(session, "tiny", "m", report.challenger_version)
    assert staged.stage == "staging"
    assert staged.extra["retrain"] == {"decision": "staged", "reason": report.reason, "notes": []}


def test_tie_goes_to_the_newer_and_no_champion_promotes(db, tmp_path):
    first = retrain(TinyRecipe(tmp_path, 0.5))
    assert first.decision == "promoted" and first.champion_version is None
    assert "nothing to beat" in first.reason
    tie = retrain(TinyRecipe(tmp_path, 0.5))
    assert tie.decision == "promoted" and "ties go to the newer" in tie.reason
    assert tie.lineage.parent_version == first.challenger_version


def test_compressed_variant_outside_tolerance_stays_staged(db, tmp_path):
    _champion(tmp_path, 0.80)
    report = retrain(TinyRecipe(tmp_path, 0.90, onnx_drop=0.05))
    assert report.decision == "staged"
    assert report.compressed is not None and not report.compressed.within_tolerance
    assert "compressed variant onnx-fp32 loses 0.0500" in report.reason
    ok = retrain(TinyRecipe(tmp_path, 0.90, onnx_drop=0.0))
    assert ok.decision == "promoted" and ok.compressed.within_tolerance
    with session_scope() as session:  # the variants are registered beside the challenger
        variant = get_version(session, "tiny", "m", f"{ok.challenger_version}+onnx-fp32")
    assert variant.extra["parent_version"] == ok.challenger_version


def test_decide_refuses_an_unmeasured_challenger():
    gate = PromotionGate("d/m", higher_is_better=False)
    assert decide(gate, 1.0, float("nan"), None, has_champion=True)[0] is False
    assert decide(gate, 1.0, 0.9, None, has_champion=True)[0] is True  # lower is better
    assert decide(gate, 1.0, 1.1, None, has_champion=True)[0] is False


def test_a_job_is_claimed_by_one_worker_only(db):
    with session_scope() as session:
        job, created = queue_job(session, domain="tiny", model="m", trigger="manual")
        again, created_again = queue_job(session, domain="tiny", model="m", trigger="manual")
    assert created and not created_again and again.id == job.id
    claimed: list[int] = []
    barrier = threading.Barrier(4)

    def worker(name: str) -> None:
        barrier.wait()
        with session_scope() as session:
            row = claim_next(session, name)
            if row is not None:
                claimed.append(row.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert claimed == [job.id]
    with session_scope() as session:
        assert claim_next(session, "late") is None
        row = session.get(RetrainJobRow, job.id)
        assert row.status == "running" and row.worker.startswith("w")
    # its worker died: once stale, another worker takes the job over (it is not lost)
    with session_scope() as session:
        again = claim_next(session, "rescuer", stale_after=timedelta(0))
        assert again is not None and again.id == job.id and again.worker == "rescuer"


def test_drain_records_each_outcome(db):
    with session_scope() as session:
        queue_job(session, domain="tiny", model="a", trigger="manual")
        queue_job(session, domain="tiny", model="b", trigger="manual")
        queue_job(session, domain="other", model="c", trigger="manual")

    def run(job: RetrainJobRow) -> dict[str, Any]:
        if job.model == "b":
            raise RuntimeError("no data")
        return {"decision": "staged", "reason": "worse"}

    assert drain(run, worker="w", domain="tiny") == 2
    with session_scope() as session:
        jobs = {j.model: j for j in list_jobs(session)}
    assert jobs["a"].status == "staged" and jobs["a"].result["reason"] == "worse"
    assert jobs["b"].status == "failed" and "no data" in jobs["b"].result["error"]
    assert jobs["c"].status == "queued"


def test_a_drift_alert_queues_one_retrain_not_two(db):
    from verticals.core.monitoring.alerts import Signal, apply_signals

    def evaluate(ratio: float, at) -> list:
        fraud = {"domain": "finance", "model": "card-fraud-xgb", "ratio": ratio, "value": ratio}
        signals = [
            Signal(rule="drift", summary="d", **fraud),
            Signal(rule="latency", summary="l", **fraud),
            # a model no domain can retrain: its drift queues nothing
            Signal(
                rule="drift",
                domain="medical",
                model="no-such-task",
                ratio=ratio,
                value=ratio,
                summary="m",
            ),
        ]
        with session_scope() as session:
            return apply_signals(
                session, signals, for_s=0, resolve_for_s=0, resolve_ratio=0.8, now=at
            )

    now = utcnow()
    fired = evaluate(2.0, now)
    assert {c.alert.rule for c in fired} == {"drift", "latency"} and len(fired) == 3
    evaluate(0.1, now + timedelta(minutes=1))  # resolves
    refired = evaluate(2.0, now + timedelta(minutes=2))  # a second drift alert, job still queued
    assert {c.transition for c in refired} == {"firing"}
    with session_scope() as session:
        jobs = list_jobs(session)
    assert len(jobs) == 1
    drift = next(c.alert for c in fired if c.alert.fingerprint.startswith("drift:finance"))
    assert (jobs[0].trigger, jobs[0].alert_id, jobs[0].status) == ("alert", drift.id, "queued")
    assert jobs[0].domain == "finance" and "drift" in jobs[0].reason


def test_ops_retrain_routes_queue_and_list(client, make_key):
    writer = {"X-API-Key": make_key(["ops:read", "ops:write"])}
    reader = {"X-API-Key": make_key(["ops:read"])}
    body = {"domain": "finance", "reason": "new labels"}
    first = client.post("/v1/ops/retrain", json=body, headers=writer)
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "queued" and first.json()["model"] == "card-fraud-xgb"
    again = client.post("/v1/ops/retrain", json=body, headers=writer)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert client.post("/v1/ops/retrain", json=body, headers=reader).status_code == 403
    unknown = client.post("/v1/ops/retrain", json={"domain": "nope"}, headers=writer)
    assert unknown.status_code == 404
    bad_model = client.post(
        "/v1/ops/retrain", json={"domain": "finance", "model": "x"}, headers=writer
    )
    assert bad_model.status_code in (400, 422)
    listed = client.get("/v1/ops/retrain", params={"status": "queued"}, headers=reader)
    assert [j["id"] for j in listed.json()] == [first.json()["id"]]
    assert listed.json()[0]["requested_by"] == "test"


def test_worker_command_drains_and_records_failures(db):
    import json

    import typer
    from typer.testing import CliRunner
    from verticals.core.labeling.retrain_cli import retrain_command

    with session_scope() as session:
        queue_job(session, domain="medical", model="no-such-task", trigger="manual")
    app = typer.Typer()
    app.command()(retrain_command)
    result = CliRunner().invoke(app, ["all", "--worker", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"jobs_run": 1}
    with session_scope() as session:
        (job,) = list_jobs(session)
    assert job.status == "failed" and "cannot retrain 'no-such-task'" in job.result["error"]


def test_schedule_interval_and_sigterm():
    import os
    import signal

    import typer
    from verticals.core.labeling.retrain_cli import parse_interval, stop_on_signals

    assert [parse_interval(x) for x in ("90s", "15m", "24h", "7d", "30")] == [
        90,
        900,
        86400,
        604800,
        30,
    ]
    for bad in ("0h", "soon", "-1m"):
        with pytest.raises(typer.BadParameter):
            parse_interval(bad)
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
    assert signal.getsignal(signal.SIGTERM) is before


def test_scheduled_mode_records_failures_and_stops_on_sigterm(db, monkeypatch):
    import json
    import os
    import signal

    import typer
    from typer.testing import CliRunner
    from verticals.core.labeling.retrain_cli import retrain_command

    monkeypatch.delenv("VERTICALS_FINANCE_RETRAIN_DATA", raising=False)
    app = typer.Typer()
    app.command()(retrain_command)
    timer = threading.Timer(3.0, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        result = CliRunner().invoke(app, ["finance", "--every", "1s", "--json"])
    finally:
        timer.cancel()
    assert result.exit_code == 0, result.output
    assert "original transactions" in json.loads(result.stdout.strip().splitlines()[-1])["error"]
    with session_scope() as session:
        jobs = list_jobs(session)
    assert jobs and {(j.trigger, j.status) for j in jobs} == {("schedule", "failed")}
