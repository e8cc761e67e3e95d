"""One preprocessing chain: training, evaluation and serving give the network the same tensor."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from verticals.domains.medical.imaging import decode_bytes
from verticals.domains.medical.model.data import ImageSet, as_unit_float
from verticals.domains.medical.model.evaluation import load_folder
from verticals.domains.medical.model.preprocess import centre_square, preprocess, preprocess_batch
from verticals.domains.medical.model.tasks import TASKS
from verticals.domains.medical.model.training import _resized
from verticals.domains.medical.runtime import model_input


def _png(gray: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("shape", [(90, 60), (60, 90), (20, 17), (28, 28)])
def test_training_evaluation_and_serving_see_identical_tensors(tmp_path, shape):
    spec = TASKS["pneumonia"]
    gray = np.random.default_rng(sum(shape)).integers(0, 256, size=shape, dtype=np.uint8)

    served = model_input(decode_bytes(_png(gray), "x.png").pixels, spec.input_size)

    (tmp_path / "x.png").write_bytes(_png(gray))
    (tmp_path / "labels.csv").write_text("file,label\nx.png,pneumonia\n")
    evaluated = load_folder(tmp_path, spec, spec.input_size).images[0]

    trained = _resized(ImageSet(as_unit_float(gray[None]), np.array([1])), spec.input_size)
    owned = spec.preprocess(as_unit_float(gray[None])[0])

    assert served.shape == (1, spec.input_size, spec.input_size) and served.dtype == np.float32
    np.testing.assert_array_equal(served, evaluated)
    np.testing.assert_array_equal(served, trained.images[0])
    np.testing.assert_array_equal(served, owned)


def test_chain_crops_the_centre_square_then_averages():
    pixels = np.zeros((60, 100), np.float32)
    pixels[:, 20:80] = 1.0  # exactly the centre square: the flanks must not leak in
    out = preprocess(pixels, 28)
    np.testing.assert_array_equal(out, np.ones((1, 28, 28), np.float32))
    block = np.kron(np.arange(4, dtype=np.float32).reshape(2, 2) / 3, np.ones((28, 28)))
    half = preprocess(block, 2)  # area averaging of 28x28 blocks gives the block values
    np.testing.assert_allclose(half[0], np.arange(4).reshape(2, 2) / 3, atol=1e-5)
    assert centre_square(np.zeros((3, 9))).shape == (3, 3)


def test_small_images_are_enlarged_and_stay_in_range():
    up = preprocess(np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10), 28)
    assert up.shape == (1, 28, 28) and 0.0 <= up.min() and up.max() <= 1.0
    source = np.random.default_rng(0).random((3, 1, 40, 50))
    batch = preprocess_batch(source, 28)
    assert batch.shape == (3, 1, 28, 28)
    np.testing.assert_array_equal(batch[1], preprocess(source[1], 28))
    with pytest.raises(ValueError):
        preprocess(np.zeros((2, 5, 5)), 28)
