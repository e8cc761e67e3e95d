from __future__ import annotations

import pytest
from verticals.core.db import session_scope
from verticals.core.errors import Conflict, IntegrityError
from verticals.core.registry import (
    ModelCard,
    get_version,
    list_versions,
    production_version,
    promote,
    register,
    verified_artifact,
)


@pytest.fixture
def artifact(tmp_path):
    path = tmp_path / "model.json"
    path.write_text('{"weights": [1, 2]}')
    return path


def test_register_records_sha256_and_card(db, artifact):
    with session_scope() as session:
        version = register(
            session,
            domain="d",
            name="m",
            version="1",
            artifact_path=artifact,
            metrics={"auc": 0.9},
            card=ModelCard(name="m", intended_use="tests"),
        )
    assert len(version.sha256) == 64
    assert version.card.version == "1" and version.card.metrics == {"auc": 0.9}
    assert verified_artifact(version) == artifact.resolve()


def test_tampered_artifact_is_refused(db, artifact):
    with session_scope() as session:
        version = register(session, domain="d", name="m", version="1", artifact_path=artifact)
    artifact.write_text('{"weights": [6, 6]}')
    with pytest.raises(IntegrityError, match="sha256"):
        verified_artifact(version)


def test_promotion_archives_previous_production(db, artifact):
    with session_scope() as session:
        register(
            session, domain="d", name="m", version="1", artifact_path=artifact, stage="production"
        )
        register(session, domain="d", name="m", version="2", artifact_path=artifact)
        promote(session, domain="d", name="m", version="2")
    with session_scope() as session:
        assert production_version(session, "d", "m").version == "2"
        assert get_version(session, "d", "m", "1").stage == "archived"
        assert [v.version for v in list_versions(session, domain="d")] == ["1", "2"]


def test_duplicate_version_conflicts(db, artifact):
    with session_scope() as session:
        register(session, domain="d", name="m", version="1", artifact_path=artifact)
    with session_scope() as session, pytest.raises(Conflict):
        register(session, domain="d", name="m", version="1", artifact_path=artifact)


def test_compressed_variant_losing_too_much_metric_is_not_promoted(db, artifact):
    with session_scope() as session:
        register(
            session,
            domain="d",
            name="m",
            version="int8",
            artifact_path=artifact,
            extra={"metric_drop": 0.05, "max_metric_drop": 0.01},
        )
    with session_scope() as session, pytest.raises(Conflict, match="tolerance"):
        promote(session, domain="d", name="m", version="int8")
    with session_scope() as session:
        assert (
            promote(session, domain="d", name="m", version="int8", max_metric_drop=0.1).stage
            == "production"
        )
