from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner
from verticals.core.compression import commands
from verticals.core.compression.resolve import resolve_target, split_model
from verticals.core.compression.store import store_report, variant_version
from verticals.core.errors import BadRequest, Conflict, InvalidInput, NotFound


@pytest.fixture
def parent(db, report):
    from verticals.core.db import session_scope
    from verticals.core.registry import register

    with session_scope() as session:
        return register(
            session,
            domain="testdomain",
            name="tiny",
            version=report.version,
            artifact_path=Path(report.variant("torch-fp32").path),
            metrics={"auc": report.baseline_metric},
        )


def test_report_is_stored_and_variants_registered(parent, report):
    from verticals.core.db import session_scope
    from verticals.core.registry import get_version, list_versions

    with session_scope() as session:
        registered = store_report(session, report)
    names = {v.version for v in registered}
    assert variant_version("1", "onnx-int8") in names
    assert variant_version("1", "torch-fp32") not in names  # only ONNX variants are servable
    with session_scope() as session:
        stored = get_version(session, "testdomain", "tiny", "1")
        assert stored.extra["compression"]["variants"][0]["name"] == "torch-fp32"
        int8 = get_version(session, "testdomain", "tiny", "1+onnx-int8")
        assert int8.extra["metric_drop"] == report.variant("onnx-int8").metric_drop
        assert int8.extra["max_metric_drop"] == report.max_metric_drop
        assert int8.stage == "staging"
        again = store_report(session, report)  # re-running does not duplicate variants
        assert again == []
        assert len(list_versions(session, "testdomain", "tiny")) == 1 + len(registered)


def test_every_variant_file_is_a_verified_derived_artifact(parent, report):
    from verticals.core.compression.store import derived_kind
    from verticals.core.db import session_scope
    from verticals.core.errors import IntegrityError
    from verticals.core.registry import file_sha256, list_derived, verified_derived

    with session_scope() as session:
        store_report(session, report)
        derived = {d.kind: d for d in list_derived(session, parent)}
    assert set(derived) == {derived_kind(v.name) for v in report.variants if v.path}
    int8 = derived[derived_kind("onnx-int8")]
    assert int8.sha256 == file_sha256(Path(report.variant("onnx-int8").path))
    with session_scope() as session:
        assert verified_derived(session, parent, int8.kind) == Path(int8.path)
    original = Path(int8.path).read_bytes()
    try:
        Path(int8.path).write_bytes(original + b"\0")
        with session_scope() as session, pytest.raises(IntegrityError):
            verified_derived(session, parent, int8.kind)
    finally:
        Path(int8.path).write_bytes(original)  # the report fixture is shared


def test_promotion_is_refused_past_the_tolerance(parent, report):
    from verticals.core.db import session_scope
    from verticals.core.registry import promote

    worse = report.model_copy(deep=True)
    worse.variant("onnx-int8").metric_drop = 0.5
    with session_scope() as session:
        store_report(session, worse, max_metric_drop=0.01)
    with session_scope() as session, pytest.raises(Conflict, match="metric drops"):
        promote(session, domain="testdomain", name="tiny", version="1+onnx-int8")
    with session_scope() as session:
        promoted = promote(session, domain="testdomain", name="tiny", version="1+onnx-fp32")
        assert promoted.stage == "production"


def test_model_spec_is_checked():
    assert split_model("medical/pneumonia") == ("medical", "pneumonia")
    for bad in ("medical", "/x", "a/b/c", "a/"):
        with pytest.raises(InvalidInput):
            split_model(bad)


def test_domain_without_hook_is_a_bad_request(monkeypatch):
    from verticals.core import plugins

    class Bare:
        name = "bare"

    registry = plugins.PluginRegistry(domains={"bare": Bare()})  # type: ignore[dict-item]
    monkeypatch.setattr(plugins, "discover", lambda: registry)
    with pytest.raises(BadRequest, match="does not support compression"):
        resolve_target("bare/model")
    with pytest.raises(NotFound):
        resolve_target("nosuch/model")
    with pytest.raises(NotFound, match="cannot import"):
        resolve_target("no_such_module_xyz:factory")


def test_compress_command_prints_the_report_last(monkeypatch, tiny_target, report):
    module = types.ModuleType("fake_targets")
    module.tiny = lambda name, data, split: tiny_target
    monkeypatch.setitem(sys.modules, "fake_targets", module)
    seen = {}

    def fake_compress(target, folder, plan, step):
        seen["plan"] = plan
        step("working")
        return report

    monkeypatch.setattr(commands, "compress", fake_compress)
    app = typer.Typer()
    app.command()(commands.compress_command)
    result = CliRunner().invoke(
        app, ["fake_targets:tiny", "--json", "--no-register", "--prune", "0.5"]
    )
    assert result.exit_code == 0, result.output
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["model"] == "testdomain/tiny"
    assert {v["name"] for v in line["variants"]} >= {"torch-fp32", "onnx-fp32", "onnx-int8"}
    assert seen["plan"].prune_amounts == (0.5,)
