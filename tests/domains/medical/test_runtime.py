"""The inference engine: model input, micro-batching, model-load failures."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from verticals.core.errors import ModelUnavailable
from verticals.domains.medical.runtime import InferenceEngine, centre_square, model_input


def test_model_input_is_the_centre_square_resized():
    pixels = np.zeros((60, 100), np.float32)
    pixels[:, 20:80] = 1.0  # exactly the centre square
    x = model_input(pixels, 28)
    assert x.shape == (1, 28, 28) and x.dtype == np.float32
    assert np.allclose(x, 1.0)
    assert centre_square(np.zeros((3, 9))).shape == (3, 3)
    assert model_input(np.ones((5, 5), np.float32), 28).shape == (1, 28, 28)  # upsampled


def test_concurrent_requests_are_batched(fake_models):
    engine = InferenceEngine()
    images = [np.full((1, 28, 28), i / 20, np.float32) for i in range(20)]
    results: dict[int, float] = {}
    barrier = threading.Barrier(len(images))

    def call(i: int) -> None:
        barrier.wait()
        results[i] = engine.predict("pneumonia", images[i]).probability

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.close()
    assert all(results[i] == pytest.approx(i / 20, abs=1e-6) for i in range(20))
    batches = fake_models["pneumonia"].batches
    assert sum(batches) == 20 and max(batches) > 1  # at least one real batch


def test_load_failure_is_503():
    def broken(task):
        raise FileNotFoundError("weights gone")

    engine = InferenceEngine(loader=broken)
    with pytest.raises(ModelUnavailable):
        engine.predict("pneumonia", np.zeros((1, 28, 28), np.float32))
