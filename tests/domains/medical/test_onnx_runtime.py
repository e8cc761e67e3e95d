"""The served path: the shipped classifier exported to ONNX and run by ONNX Runtime."""

from __future__ import annotations

import numpy as np
from verticals.domains.medical.inference import InferenceEngine
from verticals.domains.medical.model import shipped_classifier
from verticals.domains.medical.onnx_runtime import export_cached, onnx_predictor


def test_onnx_serving_matches_torch_and_reuses_its_export(verticals_home):
    classifier = shipped_classifier("pneumonia")
    size = classifier.input_size
    images = np.random.default_rng(0).random((5, 1, size, size), dtype=np.float32)

    predict = onnx_predictor(classifier)
    assert "CPUExecutionProvider" in predict.providers
    np.testing.assert_allclose(predict(images), classifier.predict(images), atol=1e-4)

    path = export_cached(classifier)
    assert path.is_relative_to(verticals_home)
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
