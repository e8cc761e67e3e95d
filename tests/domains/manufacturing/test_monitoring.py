"""Manufacturing under core's monitoring: 5,000 readings drawn from the reference engines (and
RUL estimates drawn from the model's own on them) raise nothing; a sensor that reads off by a
calibration offset fires a drift alert naming it within 1,000 readings; estimates that shift
(engines reported nearer failure than the fleet is) are named as the output's drift."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import insert
from verticals.core.db import session_scope
from verticals.core.db.base import utcnow
from verticals.core.db.models import PredictionRecordRow
from verticals.core.monitoring.service import evaluate_once, report_for
from verticals.core.monitoring.settings import MonitorSettings
from verticals.core.plugins import PluginRegistry
from verticals.core.registry.store import production_version, register
from verticals.domains.manufacturing.model import shipping
from verticals.domains.manufacturing.model.cmapss import READING_COLUMNS
from verticals.domains.manufacturing.monitoring import reference_readings, reference_rul
from verticals.domains.manufacturing.tables import AssetRow, ReadingRow


@pytest.fixture
def watched(domain, tmp_path) -> PluginRegistry:
    with session_scope() as session:
        if production_version(session, "manufacturing", shipping.RUL) is None:
            artifact = tmp_path / "rul.json"
            artifact.write_text("{}")  # the profile attaches to whichever version serves
            register(
                session,
                domain="manufacturing",
                name=shipping.RUL,
                version="t",
                artifact_path=artifact,
                stage="production",
            )
    return PluginRegistry(domains={"manufacturing": domain})


class Readings:
    def __init__(self) -> None:
        self.reference = reference_readings()
        self.rng = np.random.default_rng(3)
        self.cycle = 0
        with session_scope() as session:
            asset = AssetRow(tenant="default", asset_id="engine-x", kind="turbofan")
            session.add(asset)
            session.flush()
            self.asset_pk = asset.id

    def send(self, n: int, offsets: dict[str, float] | None = None) -> None:
        values = self.reference[self.rng.integers(0, len(self.reference), n)].copy()
        for name, offset in (offsets or {}).items():
            values[:, READING_COLUMNS.index(name)] += offset
        now = utcnow() - timedelta(minutes=5)
        rows = [
            {
                "asset_pk": self.asset_pk,
                "cycle": self.cycle + k + 1,
                "values": v.tolist(),
                "source": "api",
                "received_at": now,
            }
            for k, v in enumerate(values)
        ]
        with session_scope() as session:
            session.execute(insert(ReadingRow), rows)
        self.cycle += n


class Estimates:
    """RUL answers as the service records them (one prediction record per estimate)."""

    def __init__(self, domain) -> None:  # noqa: ANN001
        model, self.version = domain.service.rul_model()
        self.reference = reference_rul(model)
        self.rng = np.random.default_rng(4)

    def send(self, n: int, scale: float = 1.0) -> None:
        ruls = self.reference[self.rng.integers(0, len(self.reference), n)] * scale
        rows = [
            {
                "request_id": f"r{i}",
                "domain": "manufacturing",
                "route": "/v1/manufacturing/fleet",
                "model_version": self.version,
                "input_sha256": "0" * 64,
                "output": {"asset_id": "engine-x", "rul": float(rul)},
                "status_code": 200,
                "latency_ms": 1.0,
                "created_at": utcnow(),
            }
            for i, rul in enumerate(ruls)
        ]
        with session_scope() as session:
            session.execute(insert(PredictionRecordRow), rows)


def test_stable_readings_stay_quiet_and_an_offset_sensor_fires(watched, domain) -> None:
    settings = MonitorSettings(webhook_url=None, for_s=0)
    stream, estimates = Readings(), Estimates(domain)
    for _ in range(10):  # 5,000 readings from the reference engines, 1,500 estimates
        stream.send(500)
        estimates.send(150)
        assert evaluate_once(watched, settings)[1] == []
    report = report_for(watched, "manufacturing")
    assert report.status == "ok" and report.window.count == 1000
    outputs = [row for row in report.features if row.output]
    assert {row.name for row in outputs} == {"rul"} and not any(r.drifted for r in outputs)

    offset = 3 * float(np.std(stream.reference[:, READING_COLUMNS.index("sensor_11")]))
    sent = 0
    changes = []
    while not changes and sent < 1000:
        stream.send(100, {"sensor_11": offset})
        sent += 100
        changes = evaluate_once(watched, settings)[1]
    assert changes, "no alert within 1,000 readings"
    (change,) = changes
    assert change.alert.detail["features"] == ["sensor_11"]  # the estimates did not move


def test_shifted_estimates_are_named_as_the_output_drift(watched, domain) -> None:
    stream, estimates = Readings(), Estimates(domain)
    stream.send(500)
    estimates.send(199)  # under min_count: the output is not judged yet
    report = report_for(watched, "manufacturing")
    assert report.status == "ok" and not any(row.output for row in report.features)

    estimates.send(300, scale=0.5)  # the fleet reported twice as near failure
    report = report_for(watched, "manufacturing")
    assert report.status == "drift" and report.drifted == ["rul"]
    assert {row.statistic for row in report.features if row.name == "rul"} == {
        "psi",
        "ks",
        "wasserstein",
    }


def test_an_empty_window_is_insufficient(watched) -> None:
    report = report_for(watched, "manufacturing")
    assert report.status == "insufficient" and report.window.count == 0


def test_the_output_is_declared_in_a_process_that_has_not_loaded_the_model(db) -> None:
    # `verticals monitor manufacturing` may build a version's profile before any API does:
    # without the output then, that version would never watch it
    from verticals.domains.manufacturing.plugin import ManufacturingDomain

    fresh = ManufacturingDomain()
    fresh.ensure_production_model()
    model = fresh.monitoring().get("rul")
    assert [f.name for f in model.features if f.output] == ["rul"]


def test_maintenance_outcomes_give_the_failure_models_performance(client, auth, watched) -> None:
    writer = auth("manufacturing:read,manufacturing:write")
    run = {
        "type": "M",
        "air_temperature_k": 300.0,
        "process_temperature_k": 310.0,
        "rotational_speed_rpm": 1500,
        "torque_nm": 40.0,
        "tool_wear_min": 100,
    }
    strained = {"torque_nm": 68.0, "rotational_speed_rpm": 1250, "tool_wear_min": 230}
    for i, (change, failed) in enumerate([({}, False)] * 3 + [(strained, True)] * 2):
        asset = f"mill-{i}"
        client.post(
            "/v1/manufacturing/assets",
            json={"asset_id": asset, "kind": "machine_tool"},
            headers=writer,
        )
        r = client.post(
            "/v1/manufacturing/machines:score",
            json={**run, **change, "asset_id": asset},
            headers=writer,
        )
        assert r.status_code == 200, r.text
        if i < 4:  # the last machine's outcome is not in yet
            r = client.post(
                f"/v1/manufacturing/assets/{asset}/outcome", json={"failed": failed}, headers=writer
            )
            assert r.status_code == 200, r.text
    report = report_for(watched, "manufacturing", "failure")
    assert report.features == [] and report.window.count == 5
    labelled = report.performance["from_labels"]
    assert (labelled["labelled"], labelled["positives"]) == (4, 1)
    assert labelled["roc_auc"] == 1.0  # the strained reading scored above the normal ones
    assert report.performance["estimated"]["predictions"] == 5
