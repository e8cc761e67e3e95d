"""``verticals label queue`` and ``verticals label issues`` on the test database."""

from __future__ import annotations

import json

import numpy as np
import typer
from typer.testing import CliRunner
from verticals.core.db import session_scope
from verticals.core.labeling import store
from verticals.core.labeling.cli import label_app


def invoke(*args: str):  # noqa: ANN201
    app = typer.Typer()
    app.add_typer(label_app(), name="label")
    return CliRunner().invoke(app, ["label", *args])


def test_queue_lists_items_with_why_and_counts(db) -> None:
    with session_scope() as session:
        store.enqueue(
            session,
            tenant="default",
            domain="finance",
            model="m",
            subject="a",
            priority=1.0,
            reason="low",
        )
        store.enqueue(
            session,
            tenant="default",
            domain="finance",
            model="m",
            subject="b",
            priority=9.0,
            reason="costly",
        )
    result = invoke("queue", "finance", "--json")
    assert result.exit_code == 0, result.output
    assert "m/b: costly" in result.output.splitlines()[0]
    last = json.loads(result.output.strip().splitlines()[-1])
    assert [i["subject"] for i in last["items"]] == ["b", "a"]
    assert last["counts"]["pending"] == 2


def test_issues_flags_confident_disagreements(db) -> None:
    rng = np.random.default_rng(3)
    with session_scope() as session:
        for i in range(60):
            fraud = i % 3 == 0
            score = 0.99 if i == 6 else 0.95 if fraud else 0.05
            label = "fraud" if fraud != (i == 6) else "genuine"  # item 6: a confident flip
            item = store.enqueue(
                session,
                tenant="default",
                domain="finance",
                model="m",
                subject=f"t{i}",
                priority=0.0,
                score=score + rng.normal(0, 0.01),
            )
            store.annotate(session, item, label, labeller="ana")
    result = invoke("issues", "finance", "--model", "m", "--positive", "fraud", "--json")
    assert result.exit_code == 0, result.output
    flagged = json.loads(result.output.strip().splitlines()[-1])["flagged"]
    assert [f["subject"] for f in flagged] == ["t6"]
