from __future__ import annotations

import numpy as np
import pytest
import torch
from verticals.core.errors import InvalidInput
from verticals.domains.medical.model.data import (
    ImageSet,
    TensorImageDataset,
    as_unit_float,
    carve_validation,
    load_npz_split,
    train_transforms,
)
from verticals.domains.medical.model.metrics import accuracy, choose_threshold, roc_auc
from verticals.domains.medical.model.preprocess import preprocess_batch
from verticals.domains.medical.model.tasks import TASKS, TaskSpec


def _set(n: int = 100) -> ImageSet:
    rng = np.random.default_rng(0)
    labels = (np.arange(n) % 4 == 0).astype(np.int64)
    return ImageSet(rng.random((n, 1, 28, 28), dtype=np.float32), labels)


def test_tasks():
    assert TASKS["pneumonia"].positive_index == 1
    assert TASKS["breast"].positive_index == 0  # BreastMNIST: 0 = malignant
    assert "US" in TASKS["breast"].modalities and "CHEST" in TASKS["pneumonia"].body_parts
    with pytest.raises(ValueError):
        TaskSpec(name="x", labels=["a", "b"], positive_label="c", input_size=28,
                 modalities=frozenset(), body_parts=frozenset(), dataset_file="x.npz")


def test_carve_validation_is_stratified_disjoint_and_fixed():
    data = _set()
    train, val = carve_validation(data, 0.2)
    assert len(train) + len(val) == 100 and len(val) == 20
    assert val.labels.sum() == 5  # 25 % positives kept
    again_train, again_val = carve_validation(data, 0.2)
    np.testing.assert_array_equal(val.images, again_val.images)
    train_rows = {row.tobytes() for row in train.images}
    assert not any(row.tobytes() in train_rows for row in val.images)


def test_as_unit_float_and_resize():
    out = as_unit_float(np.full((2, 5, 5), 255, np.uint8))
    assert out.shape == (2, 1, 5, 5) and out.dtype == np.float32 and out.max() == 1.0
    rgb = as_unit_float(np.zeros((2, 3, 4, 4), np.float32))
    assert rgb.shape == (2, 1, 4, 4)
    with pytest.raises(InvalidInput):
        as_unit_float(np.zeros((4, 4)))
    assert preprocess_batch(np.ones((1, 1, 100, 60), np.float32), 28).shape == (1, 1, 28, 28)
    up = preprocess_batch(np.ones((1, 1, 10, 10), np.float32), 28)
    assert up.shape == (1, 1, 28, 28) and float(up.max()) <= 1.0


def test_load_npz_split(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, val_images=np.zeros((3, 28, 28), np.uint8), val_labels=np.ones((3, 1)))
    data = load_npz_split(path, "val")
    assert data.images.shape == (3, 1, 28, 28) and data.labels.tolist() == [1, 1, 1]
    with pytest.raises(InvalidInput) as info:
        load_npz_split(path, "test")
    assert info.value.details == {"available_splits": ["val"]}
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InvalidInput):
        load_npz_split(tmp_path / "bad.npz", "val")


def test_augmentation_keeps_shape_range_and_is_seeded():
    x = torch.rand(1, 28, 28)
    a = [train_transforms(3)(x) for _ in range(1)][0]
    b = train_transforms(3)(x)
    assert a.shape == (1, 28, 28) and float(a.min()) >= 0 and float(a.max()) <= 1
    torch.testing.assert_close(torch.as_tensor(a), torch.as_tensor(b))
    dataset = TensorImageDataset(_set(8), positive_index=0, transform=train_transforms(0))
    image, target = dataset[0]
    assert image.shape == (1, 28, 28) and target.tolist() == [0.0]  # label 1 ≠ positive 0


def test_metrics_and_threshold():
    targets = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.7, 0.8, 0.9])
    assert roc_auc(targets, scores) == 1.0
    assert np.isnan(roc_auc(np.ones(3), np.ones(3)))
    threshold = choose_threshold(targets, scores)
    assert 0.7 < threshold <= 0.8
    assert accuracy(targets, scores, threshold) == 1.0
