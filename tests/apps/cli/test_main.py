"""The CLI, run in-process against the test database."""

from __future__ import annotations

import json

from typer.testing import CliRunner
from verticals.apps.cli.main import build_cli

runner = CliRunner()


def _run(*args: str):
    result = runner.invoke(build_cli(), list(args))
    assert result.exit_code == 0, result.output
    return result


def test_keys_create_prints_key_alone_on_last_line_then_list_and_revoke(db):
    out = _run("keys", "create", "--name", "bank", "--scopes", "finance:score,finance:review")
    key = out.stdout.strip().splitlines()[-1]
    assert key.startswith("vk_") and " " not in key
    listing = _run("keys", "list").stdout
    assert "bank" in listing and key not in listing
    _run("keys", "revoke", "1")
    from verticals.core.auth import list_keys
    from verticals.core.db import session_scope

    with session_scope() as session:
        assert list_keys(session)[0].revoked_at is not None


def test_evaluate_dispatches_to_the_plugin_and_prints_json_last(db, tmp_path, plugins):
    from verticals.core.bootstrap import ensure_production_models

    ensure_production_models(plugins)
    data = tmp_path / "rows.json"
    data.write_text(
        json.dumps([{"values": [1, 0, 0], "label": 1}, {"values": [0, 4, 0], "label": 0}])
    )
    out = _run("evaluate", "echo", "--data", str(data), "--json")
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"accuracy": 1.0, "n": 2.0}


def test_models_list_and_promote(db, plugins):
    from verticals.core.bootstrap import ensure_production_models

    ensure_production_models(plugins)
    listed = json.loads(_run("models", "list", "--json").stdout.strip().splitlines()[-1])
    echo = [m for m in listed if m["domain"] == "echo"]
    assert echo[0]["stage"] == "production" and len(echo[0]["sha256"]) == 64
    _run("models", "promote", "echo/linear", "1", "--stage", "archived")
    listed = json.loads(
        _run("models", "list", "--json", "--domain", "echo").stdout.splitlines()[-1]
    )
    assert listed[0]["stage"] == "archived"
    from verticals.core.audit import recent_actions
    from verticals.core.db import session_scope

    with session_scope() as session:
        promoted = recent_actions(session)[0]
    assert (promoted.action, promoted.target, promoted.actor) == (
        "model.promote",
        "linear:1",
        "cli operator",
    )


def test_unknown_model_is_a_clear_error_not_a_traceback(db):
    result = runner.invoke(build_cli(), ["models", "promote", "echo/nope", "9"])
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception)
    assert "not registered" in str(result.exception)


def test_domains_lists_installed_plugins(db):
    assert "echo: Echo (test plugin)" in _run("domains").stdout


def test_db_downgrade_and_upgrade(db):
    from verticals.core.db.migrate import table_names

    _run("db", "downgrade", "base")
    assert "api_keys" not in table_names()
    _run("db", "upgrade")
    assert "api_keys" in table_names()


def test_models_verify_names_failing_artifacts_and_forget_derived_recovers(db, tmp_path):
    from verticals.core.db import session_scope
    from verticals.core.registry import register, register_derived

    weights, graph = tmp_path / "w.bin", tmp_path / "g.onnx"
    weights.write_bytes(b"weights")
    graph.write_bytes(b"graph")
    with session_scope() as session:
        version = register(session, domain="d", name="m", version="1", artifact_path=weights)
        register_derived(session, version, "onnx", graph)
    checks = json.loads(_run("models", "verify", "--json").stdout.strip().splitlines()[-1])
    assert {(c["kind"], c["status"]) for c in checks} == {("model", "ok"), ("onnx", "ok")}

    graph.write_bytes(b"graph, edited")
    result = runner.invoke(build_cli(), ["models", "verify", "--json"])
    assert result.exit_code == 1
    checks = json.loads(result.stdout.strip().splitlines()[-1])
    assert {(c["model"], c["kind"], c["status"]) for c in checks} == {
        ("d/m:1", "model", "ok"),
        ("d/m:1", "onnx", "mismatch"),
    }
    assert "1 failing" in runner.invoke(build_cli(), ["models", "verify"]).stdout

    _run("models", "forget-derived", "d/m", "1", "onnx", "--delete-file")
    assert not graph.exists()
    checks = json.loads(_run("models", "verify", "--json").stdout.strip().splitlines()[-1])
    assert [c["kind"] for c in checks] == ["model"]
    result = runner.invoke(build_cli(), ["models", "forget-derived", "d/m", "1", "onnx"])
    assert result.exit_code != 0 and "no registered" in str(result.exception)
