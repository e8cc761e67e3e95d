from __future__ import annotations

import json

import pytest
from verticals.core.audit import recent_actions
from verticals.core.auth import Principal
from verticals.core.db import session_scope
from verticals.core.errors import InvalidInput
from verticals.core.registry import list_versions

from verticals_echo import NAME
from verticals_echo.model.data import SAMPLE


def test_score_uses_the_production_model(domain):
    assert domain.service.score([2, 0, 1]) == (pytest.approx(2.1), "1")
    with pytest.raises(InvalidInput):
        domain.service.score([float("nan"), 0, 1])


def test_a_viewer_action_is_logged_under_the_viewer(domain, viewer):
    assert domain.service.score_as(viewer, [1, 0, 0]) == pytest.approx(0.6)
    domain.service.add_note(viewer, "looked fine")
    with session_scope() as session:
        actions = recent_actions(session)
    assert [(a.action, a.actor, a.tenant) for a in actions] == [
        ("note.add", "ann", "t1"),
        ("score", "ann", "t1"),
    ]
    assert all(a.domain == NAME for a in actions)


def test_notes_stay_in_their_tenant(domain, viewer):
    domain.service.add_note(viewer, "mine")
    other = Principal(name="bob", scopes=["*"], tenant="t2")
    assert [n.text for n in domain.service.list_notes(viewer)] == ["mine"]
    assert domain.service.list_notes(other) == []


def test_train_registers_and_promotes_then_serves_the_new_version(domain):
    version, metrics, promoted = domain.service.train(SAMPLE, "2")
    assert promoted and metrics["val_accuracy"] == 1.0 and metrics["val_n"] == 4.0
    assert domain.service.model_version == "2"
    with session_scope() as session:
        stages = {v.version: v.stage for v in list_versions(session, NAME)}
        assert all(len(v.sha256) == 64 for v in list_versions(session, NAME))
    assert stages == {"1": "archived", "2": "production"}


def test_a_model_below_the_bar_is_registered_but_not_promoted(domain, monkeypatch, tmp_path):
    from verticals_echo.settings import reset_settings

    monkeypatch.setenv("VERTICALS_ECHO_MIN_VAL_ACCURACY", "1.0")
    reset_settings()
    flipped = [
        {"values": row["values"], "target": -row["target"] if i % 4 == 3 else row["target"]}
        for i, row in enumerate(json.loads(SAMPLE.read_text()))
    ]
    data = tmp_path / "flipped.json"
    data.write_text(json.dumps(flipped))
    _, metrics, promoted = domain.service.train(data, "2")
    assert not promoted and metrics["val_accuracy"] < 1.0
    assert domain.service.model_version == "1"


def test_evaluate_reports_accuracy_on_labelled_rows(domain, tmp_path):
    rows = tmp_path / "rows.json"
    rows.write_text(
        json.dumps([{"values": [1, 0, 0], "label": 1}, {"values": [0, 4, 0], "label": 0}])
    )
    assert domain.service.evaluate(rows) == {"accuracy": 1.0, "n": 2.0}
