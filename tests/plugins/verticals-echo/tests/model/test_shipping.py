from __future__ import annotations

import pytest
from verticals.core.db import session_scope
from verticals.core.errors import IntegrityError
from verticals.core.registry import file_sha256, production_version

from verticals_echo import NAME
from verticals_echo.model import shipping
from verticals_echo.model.inference import LinearModel


def test_the_shipped_model_is_registered_once_with_its_sha256(migrated):
    assert shipping.ensure_shipped() == shipping.ensure_shipped() == "1"
    with session_scope() as session:
        version = production_version(session, NAME, shipping.MODEL_NAME)
    assert version.sha256 == file_sha256(shipping.SHIPPED)


def test_a_tampered_artifact_is_never_loaded(migrated):
    model = LinearModel(weights=[1.0, 0.0, 0.0], bias=0.0)
    with session_scope() as session:
        registered = shipping.register_trained(session, model, "9", {"val_accuracy": 1.0}, True)
    assert registered.promoted  # as good as the shipped model: ties go to the newer
    with open(registered.version.artifact_path, "ab") as handle:
        handle.write(b" ")
    with session_scope() as session, pytest.raises(IntegrityError):
        shipping.load_production(session)
