"""Derived artifacts: registered with their sha256 per (model version, kind), verified on load."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from verticals.core.db import session_scope
from verticals.core.db.models import DerivedArtifactRow
from verticals.core.errors import IntegrityError, InvalidInput, NotFound
from verticals.core.registry import (
    ModelVersion,
    derived_artifact,
    file_sha256,
    forget_derived,
    list_derived,
    register,
    register_derived,
    verified_artifact,
    verified_derived,
    verify_registry,
)


@pytest.fixture
def version(db, tmp_path) -> ModelVersion:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"weights")
    with session_scope() as session:
        return register(session, domain="d", name="m", version="1", artifact_path=weights)


@pytest.fixture
def graph(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"graph v1")
    return path


def test_register_then_verified_load(version, graph):
    with session_scope() as session:
        assert derived_artifact(session, version, "onnx") is None
        assert verified_derived(session, version, "onnx") is None
        registered = register_derived(session, version, "onnx", graph)
    assert registered.sha256 == file_sha256(graph) and registered.size_bytes == 8
    assert registered.ref == "d/m:1" and registered.what == "onnx artifact of d/m:1"
    with session_scope() as session:
        assert verified_derived(session, version, "onnx") == graph.resolve()
        found = derived_artifact(session, version, "onnx")
        assert found.model_dump(exclude={"created_at"}) == registered.model_dump(
            exclude={"created_at"}
        )
        assert derived_artifact(session, version, "int8") is None


def test_mismatch_is_refused(version, graph):
    with session_scope() as session:
        register_derived(session, version, "onnx", graph)
    graph.write_bytes(b"graph v1 with the final bias set to -20")
    with session_scope() as session, pytest.raises(IntegrityError, match="onnx artifact of d/m:1"):
        verified_derived(session, version, "onnx")


def test_missing_file_is_refused(version, graph):
    with session_scope() as session:
        register_derived(session, version, "onnx", graph)
    graph.unlink()
    with session_scope() as session, pytest.raises(IntegrityError, match="missing"):
        verified_derived(session, version, "onnx")


def test_registering_again_replaces_the_earlier_record(version, graph, tmp_path):
    with session_scope() as session:
        first = register_derived(session, version, "onnx", graph)
    other = tmp_path / "other.onnx"
    other.write_bytes(b"graph v2, longer")
    with session_scope() as session:
        second = register_derived(session, version, "onnx", other)
        register_derived(session, version, "int8", graph)
    assert second.sha256 != first.sha256 and second.path == str(other.resolve())
    with session_scope() as session:
        assert verified_derived(session, version, "onnx") == other.resolve()
        rows = session.scalars(select(DerivedArtifactRow)).all()
        assert sorted(r.kind for r in rows) == ["int8", "onnx"]
        assert [d.kind for d in list_derived(session, version)] == ["int8", "onnx"]
        assert forget_derived(session, version, "onnx").path == str(other.resolve())
        assert forget_derived(session, version, "onnx") is None
        assert verified_derived(session, version, "onnx") is None


def test_refuses_unknown_versions_missing_files_and_bad_kinds(version, graph, tmp_path):
    stranger = version.model_copy(update={"version": "2"})
    with session_scope() as session:
        with pytest.raises(NotFound):
            register_derived(session, stranger, "onnx", graph)
        with pytest.raises(NotFound):
            derived_artifact(session, stranger, "onnx")
        with pytest.raises(InvalidInput, match="does not exist"):
            register_derived(session, version, "onnx", tmp_path / "absent.onnx")
        for kind in ("", "two words", "x" * 121):
            with pytest.raises(InvalidInput, match="kind"):
                register_derived(session, version, kind, graph)


def test_verified_artifact_goes_through_the_verifying_loader(version):
    weights = verified_artifact(version)
    weights.write_bytes(b"tampered")
    with pytest.raises(IntegrityError) as err:
        verified_artifact(version)
    assert err.value.details["reason"] == "mismatch"


def test_verify_registry_names_each_failure(version, graph, tmp_path):
    other = tmp_path / "int8.onnx"
    other.write_bytes(b"int8")
    with session_scope() as session:
        register_derived(session, version, "onnx", graph)
        register_derived(session, version, "int8", other)
    with session_scope() as session:
        assert all(c.ok for c in verify_registry(session))
    graph.write_bytes(b"edited")
    other.unlink()
    with session_scope() as session:
        checks = {c.kind: c for c in verify_registry(session)}
        assert verify_registry(session, domain="elsewhere") == []
    assert set(checks) == {"model", "onnx", "int8"}
    assert checks["model"].ok and checks["model"].model == "d/m:1"
    assert (
        checks["onnx"].status == "mismatch" and "onnx artifact of d/m:1" in checks["onnx"].message
    )
    assert checks["int8"].status == "missing"
