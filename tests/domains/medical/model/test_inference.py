from __future__ import annotations

import numpy as np
import pytest
import torch
from verticals.core.errors import InvalidInput
from verticals.domains.medical.model import TASKS, shipped_classifier


@pytest.fixture(scope="module", params=sorted(TASKS))
def classifier(request):
    return shipped_classifier(request.param)


def test_predict_any_size_returns_probabilities(classifier):
    rng = np.random.default_rng(0)
    for shape in [(3, 1, 28, 28), (2, 1, 64, 48), (1, 1, 16, 16), (2, 28, 28)]:
        probs = classifier.predict(rng.random(shape, dtype=np.float32))
        assert probs.shape == (shape[0],) and probs.dtype == np.float32
        assert ((probs >= 0) & (probs <= 1)).all()
    assert classifier.version and classifier.task in TASKS
    assert classifier.input_size == TASKS[classifier.task].input_size
    assert 0 < classifier.threshold < 1


def test_predict_rejects_bad_input(classifier):
    bad = [
        np.full((1, 1, 28, 28), np.nan, np.float32),
        np.full((1, 1, 28, 28), np.inf, np.float32),
        np.zeros((1, 3, 28, 28), np.float32),
        np.zeros((28, 28), np.float32),
        np.zeros((0, 1, 28, 28), np.float32),
        np.full((1, 1, 28, 28), 255.0, np.float32),
        np.zeros((1, 1, 28, 28), np.uint8),
    ]
    for images in bad:
        with pytest.raises(InvalidInput):
            classifier.predict(images)


def test_gradcam_and_torch_module(classifier):
    image = np.random.default_rng(1).random((1, 50, 40), dtype=np.float32)
    cam = classifier.gradcam(image)
    assert cam.shape == (50, 40) and cam.dtype == np.float32
    assert cam.min() >= 0 and cam.max() <= 1
    with pytest.raises(InvalidInput):
        classifier.gradcam(np.zeros((2, 28, 28), np.float32))
    module = classifier.torch_module()
    example = classifier.example_input(4)
    assert example.shape == (4, 1, classifier.input_size, classifier.input_size)
    with torch.no_grad():
        out = module(example)
    assert out.shape == (4, 1)
    np.testing.assert_allclose(out[:, 0].numpy(), classifier.predict(example.numpy()), atol=1e-5)
