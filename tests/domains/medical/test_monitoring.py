"""Medical under core's monitoring: 5,000 studies drawn from the reference images raise nothing;
image intensities x1.3 + 0.05 fire a drift alert naming the intensity features within 1,000
studies (and the embedding soon after); clinicians' reviews give performance figures; a real
upload stores the summary the window reads.

The shipped pneumonia classifier summarises 800 reference images (production takes 2,000) and
300 shifted ones once per module (~3 s on a quiet core, several times that on this shared
machine); the streams resample those summaries rather than running the network 6,000 times.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
from sqlalchemy import insert, select
from verticals.core.db import session_scope
from verticals.core.db.base import utcnow
from verticals.core.labeling import store
from verticals.core.monitoring.service import evaluate_once, report_for
from verticals.core.monitoring.settings import MonitorSettings
from verticals.core.monitoring.spec import WatchSpec
from verticals.core.plugins import PluginRegistry
from verticals.domains.medical import model_api, monitoring
from verticals.domains.medical.monitoring import (
    EMBEDDING,
    EMBEDDING_DIMS,
    INTENSITY,
    image_summaries,
    reference_columns,
    watched_task,
)
from verticals.domains.medical.tables import StudyRow

pytest.importorskip("torch")

TASK = "pneumonia"


def _shift(images: np.ndarray) -> np.ndarray:
    """A brighter, higher-contrast acquisition: what a new detector or export setting does."""
    return np.clip(images * 1.3 + 0.05, 0.0, 1.0)


@pytest.fixture(scope="module")
def summaries() -> SimpleNamespace:
    from verticals.domains.medical.model import shipped_classifier
    from verticals.domains.medical.model.data import default_data_file, load_npz_split

    classifier = shipped_classifier(TASK)
    with mock.patch.object(monitoring, "REFERENCE_IMAGES", 800):  # production: 2,000
        reference = reference_columns(TASK, classifier)
    images = load_npz_split(default_data_file(model_api.tasks()[TASK]), "val").images[:300]
    shifted = _shift(images)
    scores, penultimate = classifier.inspect(shifted)
    return SimpleNamespace(
        classifier=classifier,
        reference=reference,
        shifted={
            "summary": image_summaries(shifted, penultimate),
            "ood_score": np.round(scores, 4),
            "probability": classifier.predict(shifted).astype(np.float64),
        },
    )


@pytest.fixture
def medical(db, plugins, summaries, monkeypatch) -> PluginRegistry:
    """The medical domain with its shipped models in production, watching pneumonia against the
    module's reference columns (computed as ``reference_columns`` computes them)."""
    domain = plugins.get("medical")
    domain.ensure_production_model()
    watched = replace(watched_task(TASK), reference=lambda: summaries.reference)
    monkeypatch.setattr(domain, "monitoring", lambda: WatchSpec(models=(watched,)))
    return PluginRegistry(domains={"medical": domain})


class Studies:
    """Inserts predicted-study rows as the study path would, newest last."""

    def __init__(self, summaries: SimpleNamespace, seed: int = 11) -> None:
        self.reference = summaries.reference
        self.shifted = summaries.shifted
        self.rng = np.random.default_rng(seed)
        self.sent = 0
        self.start = utcnow() - timedelta(hours=3)

    def _reference_row(self, i: int) -> tuple[dict, float, float]:
        ref = self.reference
        summary = {name: float(ref[name][i]) for name in INTENSITY}
        summary[EMBEDDING] = ref[EMBEDDING][i].tolist()
        return summary, float(ref["ood_score"][i]), float(ref["probability"][i])

    def _shifted_row(self, i: int) -> tuple[dict, float, float]:
        found = self.shifted
        return found["summary"][i], float(found["ood_score"][i]), float(found["probability"][i])

    def send(self, n: int, *, shifted: bool = False) -> list[str]:
        size = len(self.shifted["summary"]) if shifted else len(self.reference["probability"])
        pick = self.rng.integers(0, size, n)
        rows, ids = [], []
        for i in pick:
            summary, ood, probability = (self._shifted_row if shifted else self._reference_row)(i)
            at = self.start + timedelta(milliseconds=self.sent)
            study_id = uuid.uuid4().hex
            ids.append(study_id)
            label = "pneumonia" if probability >= 0.5 else "normal"
            rows.append(
                {
                    "id": study_id,
                    "created_at": at,
                    "task": TASK,
                    "model_version": "test",
                    "positive_label": "pneumonia",
                    "probability": probability,
                    "predicted_label": label,
                    "finding": label,
                    "ood_score": ood,
                    "findings": [],
                    "source_kind": "png",
                    "rows": 28,
                    "columns": 28,
                    "window_center": 0.5,
                    "window_width": 1.0,
                    "study_uid": "1.2",
                    "series_uid": "1.2.1",
                    "sop_instance_uid": "1.2.1.1",
                    "sop_class_uid": "1.2.840.10008.5.1.4.1.1.7",
                    "storage_dir": study_id,
                    "image_summary": summary,
                }
            )
            self.sent += 1
        with session_scope() as session:
            session.execute(insert(StudyRow), rows)
        return ids


def test_stable_studies_stay_quiet_and_shifted_intensities_fire(medical, summaries) -> None:
    settings = MonitorSettings(webhook_url=None, for_s=0)
    stream = Studies(summaries)
    for _ in range(10):  # 5,000 studies drawn from the reference images
        stream.send(500)
        assert evaluate_once(medical, settings)[1] == []
    report = report_for(medical, "medical", TASK)
    assert report.status == "ok" and report.window.count == 1000 and report.drifted == []
    names = {row.name for row in report.features}
    assert names == {*INTENSITY, EMBEDDING, "ood_score", "probability"}

    sent, changes = 0, []
    while not changes and sent < 1000:
        stream.send(100, shifted=True)
        sent += 100
        changes = evaluate_once(medical, settings)[1]
    assert changes, "no alert within 1,000 shifted studies"
    (change,) = changes
    named = set(change.alert.detail["features"])
    assert {"intensity_mean", "intensity_p50"} <= named, named
    assert named <= {*INTENSITY, EMBEDDING, "ood_score", "probability"}

    while sent < 500:  # the penultimate layer sees it too once a third of the window is shifted
        stream.send(100, shifted=True)
        sent += 100
    assert EMBEDDING in report_for(medical, "medical", TASK).drifted


def test_reviews_give_performance_of_the_window(medical, summaries) -> None:
    stream = Studies(summaries, seed=5)
    ids = stream.send(400)
    rng = np.random.default_rng(2)
    with session_scope() as session:
        rows = {r.id: r for r in session.scalars(select(StudyRow).where(StudyRow.id.in_(ids)))}
        for study_id in ids[:300]:  # clinicians agree with a calibrated model's odds
            row = rows[study_id]
            positive = rng.random() < row.probability
            # a positive is first called normal, then corrected by the same reader: the
            # latest review counts
            item = store.enqueue(
                session,
                tenant=row.tenant,
                domain="medical",
                model=TASK,
                subject=study_id,
                priority=0.0,
                score=row.probability,
            )
            for label in ["normal", "pneumonia"] if positive else ["normal"]:
                store.annotate(session, item, label, labeller="dr-a")
    performance = report_for(medical, "medical", TASK).performance
    labelled = performance["from_labels"]
    assert labelled["labelled"] == 300 and 0 < labelled["positives"] < 300
    assert labelled["roc_auc"] > 0.9 and labelled["precision"] > 0.8
    assert performance["estimated"]["predictions"] == 400


def test_an_empty_window_is_insufficient(medical) -> None:
    report = report_for(medical, "medical", TASK)
    assert report.status == "insufficient" and report.window.count == 0


def test_an_upload_stores_the_summary_the_window_reads(
    db, summaries, make_key, monkeypatch, request
) -> None:
    from fastapi.testclient import TestClient
    from verticals.core.serving.app import build_app
    from verticals.domains.medical.plugin import MedicalDomain
    from verticals.domains.medical.settings import reset_medical_settings

    # eager torch serves the probability (no ONNX export at start-up: a summary test, not a
    # runtime test); the summary comes from the same OOD pass either way
    monkeypatch.setenv("VERTICALS_MEDICAL_RUNTIME", "torch")
    reset_medical_settings()
    request.addfinalizer(reset_medical_settings)
    only = {TASK: model_api.tasks()[TASK]}  # start one task's model, not every one
    monkeypatch.setattr(model_api, "tasks", lambda: only)
    domain = MedicalDomain()
    app = build_app(PluginRegistry(domains={"medical": domain}), max_request_bytes=64 << 20)
    path = sorted((domain.demo_data() / TASK).glob("*.dcm"))[0]
    with (
        mock.patch.object(model_api, "load_classifier", lambda task: summaries.classifier),
        TestClient(app) as client,
    ):
        r = client.post(
            "/v1/medical/studies",
            files={"file": (path.name, path.read_bytes())},
            data={"task": TASK},
            headers={"Authorization": f"Bearer {make_key(['medical:*'])}"},
        )
    assert r.status_code == 201, r.text
    with session_scope() as session:
        row = session.get(StudyRow, r.json()["study_id"])
        summary, ood = row.image_summary, row.ood_score
    assert set(summary) == {*INTENSITY, EMBEDDING} and len(summary[EMBEDDING]) == EMBEDDING_DIMS
    assert 0.0 <= summary["intensity_p05"] <= summary["intensity_p50"] <= 1.0
    assert ood is not None and ood == pytest.approx(r.json()["ood_score"])


def test_monitor_cli_reports_medical_with_a_reference_from_the_loaded_model(
    db, monkeypatch
) -> None:
    """The real path: the plugin's spec, the reference built inside core's transaction from
    the classifier the plugin loaded (300 images here, 2,000 in production), the JSON line."""
    from typer.testing import CliRunner
    from verticals.apps.cli.main import build_cli

    monkeypatch.setattr(monitoring, "REFERENCE_IMAGES", 300)
    result = CliRunner().invoke(build_cli(), ["monitor", "medical", "--model", TASK, "--json"])
    assert result.exit_code == 0, result.output
    line = json.loads(result.output.strip().splitlines()[-1])
    assert (line["domain"], line["model"], line["status"]) == ("medical", TASK, "insufficient")
    assert line["window"]["reference_count"] == 300 and line["window"]["count"] == 0
