"""Finance under core's monitoring: a stable stream raises nothing; card amounts x3 fire a drift
alert naming ``amount`` within 1,000 predictions."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import insert
from verticals.core.db import session_scope
from verticals.core.db.base import utcnow
from verticals.core.monitoring.alerts import list_alerts
from verticals.core.monitoring.service import evaluate_once, report_for
from verticals.core.monitoring.settings import MonitorSettings
from verticals.core.plugins import PluginRegistry
from verticals.domains.finance.monitoring import reference_columns
from verticals.domains.finance.tables import TransactionRow


@pytest.fixture
def finance(db, plugins) -> PluginRegistry:
    domain = plugins.get("finance")
    domain.ensure_production_model()
    return PluginRegistry(domains={"finance": domain})


class Stream:
    """Inserts scored-transaction rows as the scoring path would, newest last."""

    def __init__(self, seed: int = 7) -> None:
        self.reference = reference_columns()
        self.rng = np.random.default_rng(seed)
        self.sent = 0
        self.start = utcnow() - timedelta(hours=2)

    def send(self, n: int, amount_factor: float = 1.0, labels: np.ndarray | None = None) -> None:
        pick = self.rng.integers(0, len(self.reference["amount"]), n)
        rows = []
        for k, i in enumerate(pick):
            number = self.sent + k
            at = self.start + timedelta(milliseconds=number)
            probability = float(self.reference["fraud_probability"][i])
            rows.append(
                {
                    "transaction_id": f"t{number}",
                    "tx_datetime": at.replace(tzinfo=None),
                    "ts": int(at.timestamp()),
                    "customer_id": str(number % 97),
                    "terminal_id": str(number % 89),
                    "amount": float(self.reference["amount"][i]) * amount_factor,
                    "fraud_probability": probability,
                    "decision": "approve",
                    "model_version": "test",
                    "input_sha256": "0" * 64,
                    "features": [],
                    "response": {},
                    "created_at": at,
                    "label": None if labels is None else bool(labels[k]),
                }
            )
        with session_scope() as session:
            session.execute(insert(TransactionRow), rows)
        self.sent += n


def test_stable_stream_stays_quiet_and_tripled_amounts_fire(finance) -> None:
    settings = MonitorSettings(webhook_url=None, for_s=0)
    stream = Stream()
    for _ in range(20):  # 5,000 predictions drawn from the reference data
        stream.send(250)
        reports, changes = evaluate_once(finance, settings)
        assert changes == []
        assert [r.status for r in reports] in (["ok"], ["insufficient"])
    report = report_for(finance, "finance")
    assert report.status == "ok" and report.window.count == 1000
    worst = {(f.name, f.statistic): f.value for f in report.features}
    assert worst[("amount", "psi")] < 0.05

    fired_after = None
    for step in range(1, 11):  # amounts x3, up to 1,000 predictions
        stream.send(100, amount_factor=3.0)
        _, changes = evaluate_once(finance, settings)
        if changes:
            fired_after = step * 100
            break
    assert fired_after is not None and fired_after <= 1000
    (change,) = changes
    assert change.transition == "firing" and change.alert.rule == "drift"
    assert change.alert.detail["features"] == ["amount"]
    with session_scope() as session:
        (open_alert,) = list_alerts(session, state="open")
    assert open_alert.id == change.alert.id
    # still drifting: the same alert is updated, not raised again
    stream.send(100, amount_factor=3.0)
    assert evaluate_once(finance, settings)[1] == []


def test_labels_give_performance_and_a_drop_fires(finance) -> None:
    import pandas as pd
    from verticals.shared_models.finance import WHATIF_FILE

    frame = pd.read_parquet(WHATIF_FILE)
    repeat = np.rint(frame["weight"].to_numpy()).astype(np.int64)
    stream = Stream(seed=3)
    stream.reference = {
        "amount": np.repeat(frame["amount"].to_numpy(np.float64), repeat),
        "fraud_probability": np.repeat(frame["probability"].to_numpy(np.float64), repeat),
        "label": np.repeat(frame["label"].to_numpy(), repeat),
    }
    settings = MonitorSettings(webhook_url=None, for_s=0, min_labelled_positives=5)
    # labelled as the validation month was: performance near the card's, no alert
    state = np.random.default_rng(3)
    stream.rng = np.random.default_rng(4)
    positives = np.flatnonzero(stream.reference["label"] == 1)

    def send_labelled(n: int, shuffle: bool) -> None:
        # enrich with frauds so a window holds enough positives to judge
        pick = np.concatenate(
            [
                state.choice(positives, n // 10),
                state.integers(0, len(stream.reference["label"]), n - n // 10),
            ]
        )
        labels = stream.reference["label"][pick].astype(bool)
        if shuffle:
            labels = state.permutation(labels)
        stream.rng = _Fixed(pick)
        stream.send(n, labels=labels)

    send_labelled(1000, shuffle=False)
    report = report_for(finance, "finance")
    found = report.performance["from_labels"]
    assert found["labelled"] == 1000 and found["positives"] >= 50
    assert found["average_precision"] > 0.6
    assert report.performance["baseline"]["average_precision"] > 0.7
    assert report.performance["estimated"]["predictions"] == 1000
    assert [c for c in evaluate_once(finance, settings)[1] if c.alert.rule != "drift"] == []
    send_labelled(1000, shuffle=True)  # labels no longer agree with the scores
    changes = evaluate_once(finance, settings)[1]
    (drop,) = [c for c in changes if c.alert.rule == "performance_average_precision"]
    assert drop.transition == "firing" and drop.alert.value < 0.3


class _Fixed:
    """Stands in for the stream's generator: hands out the picks chosen by the test."""

    def __init__(self, pick: np.ndarray) -> None:
        self.pick = pick

    def integers(self, low: int, high: int, n: int) -> np.ndarray:
        return self.pick[:n]
