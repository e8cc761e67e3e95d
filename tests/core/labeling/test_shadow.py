"""Shadow evaluation with a fake domain: only traffic served after staging is scored, never
twice, and the report compares both models on the same labelled subjects."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sklearn.metrics import average_precision_score, roc_auc_score
from sqlalchemy import select
from verticals.core.db import session_scope
from verticals.core.errors import InvalidInput, NotFound
from verticals.core.labeling.retrain import RetrainRecipe
from verticals.core.labeling.shadow import (
    ShadowRow,
    ShadowSource,
    shadow_report_for,
    shadow_score,
)
from verticals.core.labeling.shadow_tables import ShadowPredictionRow
from verticals.core.labeling.store import annotate, enqueue
from verticals.core.registry.store import get_version, register, verified_artifact


class FakeSource(ShadowSource):
    """Traffic in memory: (tenant, subject, served_at, champion score, input x)."""

    models = ("m",)
    positive_label = "yes"

    def __init__(self) -> None:
        self.traffic: list[ShadowRow] = []

    def serve(self, tenant: str, subject: str, at, champion: float, x: float) -> None:
        self.traffic.append(ShadowRow(tenant, subject, at, "1", champion, x))

    def pending(self, session, model, after, limit) -> list[ShadowRow]:
        rows = sorted(self.traffic, key=lambda r: (r.served_at, r.tenant, r.subject))
        return [r for r in rows if (r.served_at, r.tenant, r.subject) > after][:limit]

    def score(self, challenger: Any, inputs) -> list[float]:
        return [challenger * x for x in inputs]


class FakeRecipe(RetrainRecipe):
    domain = "fake"
    models = ("m",)
    metric = "score"

    def __init__(self) -> None:
        self.loads = 0

    def build(self, session, model, since, extra_data):  # pragma: no cover - not retrained here
        raise NotImplementedError

    def train_challenger(self, training, model, version):  # pragma: no cover
        raise NotImplementedError

    def evaluate(self, model, training):  # pragma: no cover
        raise NotImplementedError

    def load(self, version) -> float:
        self.loads += 1
        return float(verified_artifact(version).read_text())


class FakeDomain:
    def __init__(self, source: ShadowSource | None) -> None:
        self.source, self.recipe = source, FakeRecipe()

    def shadow(self) -> ShadowSource | None:
        return self.source

    def retraining(self) -> RetrainRecipe:
        return self.recipe


class FakePlugins:
    def __init__(self, **domains: FakeDomain) -> None:
        self.domains = domains

    def get(self, name: str) -> FakeDomain:
        if name not in self.domains:
            raise NotFound(f"unknown domain {name!r}")
        return self.domains[name]


def _register(folder: Path, version: str, value: float, stage: str):
    path = folder / f"m-{version}.txt"
    path.write_text(str(value))
    with session_scope() as session:
        return register(
            session,
            domain="fake",
            name="m",
            version=version,
            artifact_path=path,
            stage=stage,  # type: ignore[arg-type]
        )


def _rows(version: str) -> list[ShadowPredictionRow]:
    with session_scope() as session:
        query = select(ShadowPredictionRow).where(ShadowPredictionRow.version == version)
        rows = list(session.scalars(query.order_by(ShadowPredictionRow.id)))
        session.expunge_all()
        return rows


@pytest.fixture
def staged(db, tmp_path):
    _register(tmp_path, "1", 1.0, "production")
    return _register(tmp_path, "2", 2.0, "staging")


def test_only_traffic_after_staging_is_scored_and_never_twice(staged):
    source = FakeSource()
    plugins = FakePlugins(fake=FakeDomain(source))
    at = staged.created_at
    source.serve("default", "before", at - timedelta(hours=1), 0.1, 0.5)
    # same instant, two tenants, one subject name: ordered by (served_at, tenant, subject)
    for i, tenant in enumerate(["b", "a", "a"]):
        source.serve(tenant, f"s{i if tenant == 'a' else 0}", at + timedelta(seconds=1), 0.2, i)
    source.serve("default", "s9", at + timedelta(seconds=2), 0.3, 0.25)

    run = shadow_score(plugins, "fake", batch_size=2)
    assert (run.version, run.champion_version, run.scored, run.total) == ("2", "1", 4, 4)
    rows = _rows("2")
    assert {(r.tenant, r.subject) for r in rows} == {
        ("a", "s1"),
        ("a", "s2"),
        ("b", "s0"),
        ("default", "s9"),
    }
    assert {r.subject: r.score for r in rows}["s9"] == 0.5  # the challenger's 2 x 0.25
    assert all(r.champion_version == "1" for r in rows)

    loads = plugins.get("fake").recipe.loads
    again = shadow_score(plugins, "fake", batch_size=2)
    assert (again.scored, again.total) == (0, 4)
    assert plugins.get("fake").recipe.loads == loads  # nothing new: the model is not loaded

    source.serve("default", "s10", at + timedelta(seconds=3), 0.4, 1.0)
    later = shadow_score(plugins, "fake", max_rows=10)
    assert (later.scored, later.total) == (1, 5)
    assert [r.subject for r in _rows("2")].count("s10") == 1


def test_report_compares_both_on_the_same_labelled_subjects(staged):
    source = FakeSource()
    plugins = FakePlugins(fake=FakeDomain(source))
    at = staged.created_at + timedelta(seconds=1)
    # challenger score 2x, champion's ranking is reversed on the positives
    traffic = {
        "p1": (0.2, 0.45, "yes"),
        "p2": (0.1, 0.40, "yes"),
        "n1": (0.9, 0.10, "no"),
        "n2": (0.3, 0.30, "no"),
        "u1": (0.5, 0.20, None),
    }
    for subject, (champion, x, _) in traffic.items():
        source.serve("default", subject, at, champion, x)
    source.serve("default", "old", staged.created_at - timedelta(days=1), 0.99, 0.9)
    with session_scope() as session:
        for subject, (_, _, label) in [*traffic.items(), ("old", (0, 0, "yes"))]:
            if label is None:
                continue
            item = enqueue(
                session, tenant="default", domain="fake", model="m", subject=subject, priority=1
            )
            annotate(session, item, label, labeller="ana")
    shadow_score(plugins, "fake")

    report = shadow_report_for(plugins, "fake")
    assert (report.version, report.stage, report.positive_label) == ("2", "staging", "yes")
    assert (report.shadowed, report.n, report.positives, report.unlabelled) == (5, 4, 2, 1)
    assert report.champion_versions == ["1"]
    labelled = [s for s, (_, _, lab) in traffic.items() if lab]  # "old" was never shadowed
    y = [traffic[s][2] == "yes" for s in labelled]
    challenger = [2 * traffic[s][1] for s in labelled]
    champion = [traffic[s][0] for s in labelled]
    assert report.challenger.average_precision == pytest.approx(
        average_precision_score(y, challenger)
    )
    assert report.challenger.roc_auc == pytest.approx(roc_auc_score(y, challenger)) == 1.0
    assert report.champion.roc_auc == pytest.approx(roc_auc_score(y, champion)) == 0.0
    assert report.champion.average_precision == pytest.approx(average_precision_score(y, champion))
    assert report.champion.version == "1" and report.challenger.version == "2"
    assert report.note == ""


def test_refusals(db, tmp_path):
    plugins = FakePlugins(fake=FakeDomain(FakeSource()), plain=FakeDomain(None))
    with pytest.raises(InvalidInput, match="no shadow source"):
        shadow_score(plugins, "plain")
    with pytest.raises(NotFound):
        shadow_score(plugins, "nope")
    with pytest.raises(InvalidInput, match="cannot shadow"):
        shadow_score(plugins, "fake", model="other")
    _register(tmp_path, "1", 1.0, "staging")
    _register(tmp_path, "2", 1.0, "production")  # the staged one is older than production
    with pytest.raises(NotFound, match="no staged challenger"):
        shadow_score(plugins, "fake")
    with pytest.raises(InvalidInput, match="not staging"):
        shadow_score(plugins, "fake", version="2")
    report = shadow_report_for(plugins, "fake", version="1")  # an explicit version reports
    assert report.n == 0 and report.note == "no labelled shadowed subjects yet"
    assert report.challenger.roc_auc is None
    with session_scope() as session:
        assert get_version(session, "fake", "m", "1").stage == "staging"
