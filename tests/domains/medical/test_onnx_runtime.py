"""The served path: the production classifier exported to ONNX, registered as a derived artifact
with its sha256, and run by ONNX Runtime only after the sha256 check."""

from __future__ import annotations

import numpy as np
import pytest
from verticals.core.db import session_scope
from verticals.core.errors import IntegrityError
from verticals.core.registry import derived_artifact, file_sha256, forget_derived
from verticals.domains.medical.model import (
    ensure_production_models,
    load_classifier,
    shipped_classifier,
)
from verticals.domains.medical.onnx_runtime import (
    ONNX_KIND,
    export_cached,
    onnx_predictor,
    served_graph,
)
from verticals.domains.medical.runtime import InferenceEngine


@pytest.fixture
def classifier(db):
    ensure_production_models()
    return load_classifier("pneumonia")


def _registered(classifier):
    with session_scope() as session:
        return derived_artifact(session, classifier.registry_version, ONNX_KIND)


def test_onnx_serving_matches_torch_and_reuses_its_registered_export(classifier, verticals_home):
    size = classifier.input_size
    images = np.random.default_rng(0).random((5, 1, size, size), dtype=np.float32)

    predict = onnx_predictor(classifier)
    assert "CPUExecutionProvider" in predict.providers
    np.testing.assert_allclose(predict(images), classifier.predict(images), atol=1e-4)

    path = export_cached(classifier)
    assert path.is_relative_to(verticals_home)
    registered = _registered(classifier)
    assert registered.path == str(path.resolve()) and registered.sha256 == file_sha256(path)
    mtime = path.stat().st_mtime_ns
    assert export_cached(classifier) == path and path.stat().st_mtime_ns == mtime

    # the engine serves through the cached export by default
    engine = InferenceEngine(loader=lambda task: classifier)
    try:
        predictor = engine.predictor("pneumonia")
        assert getattr(predictor, "providers", None)  # ONNX Runtime, not the eager fallback
        image = np.full((1, classifier.input_size, classifier.input_size), 0.5, np.float32)
        served = engine.predict("pneumonia", image)
        assert abs(served.probability - float(classifier.predict(image[None])[0])) < 1e-4
        assert served.model_version == classifier.version
    finally:
        engine.close()


def test_unregistered_classifier_is_exported_in_memory_only(verticals_home):
    classifier = shipped_classifier("pneumonia")  # no database, no registry version
    image = np.full((1, 1, classifier.input_size, classifier.input_size), 0.3, np.float32)
    predict = onnx_predictor(classifier)
    np.testing.assert_allclose(predict(image), classifier.predict(image), atol=1e-4)
    assert not list(verticals_home.rglob("*.onnx"))  # nothing cached that nobody registered
    with pytest.raises(IntegrityError, match="not a registered model version"):
        export_cached(classifier)


def test_a_tampered_graph_is_refused_never_reexported_over(classifier):
    payload, path = served_graph(classifier)
    original = _registered(classifier).sha256

    with path.open("ab") as handle:  # edited after registration
        handle.write(b"\x00tampered")
    tampered = path.read_bytes()
    with pytest.raises(IntegrityError, match="onnx artifact of medical/pneumonia:"):
        served_graph(classifier)
    assert path.read_bytes() == tampered  # left as evidence, not healed
    assert _registered(classifier).sha256 == original

    # the operator's recovery: drop the registration; the unregistered file is never served,
    # the graph is exported afresh from the verified weights (byte-for-byte the same)
    with session_scope() as session:
        forget_derived(session, classifier.registry_version, ONNX_KIND)
    assert served_graph(classifier)[0] == payload
    assert file_sha256(path) == _registered(classifier).sha256 == original

    # a registered graph whose file is gone is exported afresh too (nothing to serve wrongly)
    path.unlink()
    assert served_graph(classifier)[0] == payload
    assert _registered(classifier).sha256 == original


def test_a_file_planted_before_registration_is_not_served(classifier):
    from verticals.domains.medical.onnx_runtime import _weights_digest, onnx_cache_path

    module = classifier.torch_module()
    path = onnx_cache_path(classifier.task, classifier.version, _weights_digest(module))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not the exported graph")
    assert _registered(classifier) is None
    payload, served_path = served_graph(classifier)
    assert served_path == path and path.read_bytes() == payload != b"not the exported graph"
    assert _registered(classifier).sha256 == file_sha256(path)
