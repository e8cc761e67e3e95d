from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from verticals.core.registry.bundle import read_bundle
from verticals.domains.medical.model import TASKS, shipped_classifier
from verticals.domains.medical.model.artifacts import model_extra, shipped_model
from verticals.domains.medical.model.networks import NetworkSpec
from verticals.domains.medical.model.training import RECIPES

CV_METRICS = {"cv_folds", "cv_roc_auc_mean", "cv_roc_auc_sd", "cv_accuracy_mean",
              "cv_accuracy_sd", "cv_balanced_accuracy_mean", "calibration_scale",
              "calibration_bias", "decision_threshold", "train_cpu_seconds"}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


@pytest.mark.parametrize("task", sorted(TASKS))
def test_shipped_model_records_its_cross_validation(task):
    shipped, _ = shipped_model(task)  # sha256-checked
    card = shipped.card
    assert _version(card.version) >= (0, 3, 0) and card.name == task
    assert CV_METRICS <= set(card.metrics) and card.metrics["cv_folds"] == 5
    assert 0 < card.metrics["cv_roc_auc_sd"] < card.metrics["cv_roc_auc_mean"] <= 1
    assert model_extra(shipped).threshold == card.metrics["decision_threshold"]
    assert set(shipped.files) == {"weights", "ood-profile"}
    assert card.reproduce_command.startswith(f"verticals train medical --task {task} --cv 5")
    assert "MedMNIST v2" in card.reproduce_command
    text = json.dumps(shipped.model_dump(mode="json"))
    assert "../shared" not in text and "/work/" not in text
    assert "balanced accuracy" in card.limitations and "Platt" in card.limitations
    assert card.metrics["train_cpu_seconds"] < 15 * 60  # the final model's CPU budget


@pytest.mark.parametrize("task", sorted(TASKS))
def test_shipped_model_serves_exports_and_explains(task):
    classifier = shipped_classifier(task)
    images = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    probs = classifier.predict(images)
    assert probs.shape == (4,) and ((probs > 0) & (probs < 1)).all()
    module = classifier.torch_module()  # ProbabilityNet: what ONNX export receives
    with torch.no_grad():
        exported = module(torch.from_numpy(images)).reshape(-1).numpy()
    np.testing.assert_allclose(exported, probs, atol=1e-5)
    cam = classifier.gradcam(images[0])
    assert cam.shape == (28, 28) and 0 <= cam.min() and cam.max() <= 1


def test_ship_writes_a_loadable_cross_validated_card(tmp_path, monkeypatch):
    """The whole shipping path on tiny data (k=3, one epoch) into a scratch folder."""
    from verticals.domains.medical.model import artifacts
    from verticals.domains.medical.model import ship as ship_module

    rng = np.random.default_rng(0)
    labels = (np.arange(72) % 3 != 0).astype(np.uint8)
    images = (rng.random((72, 28, 28)) * 80).astype(np.uint8)
    images[labels == 1, 9:19, 9:19] += 150
    data = tmp_path / "tiny.npz"
    np.savez(data, train_images=images[:48], train_labels=labels[:48, None],
             val_images=images[48:], val_labels=labels[48:, None])
    target = tmp_path / "shipped"
    target.mkdir()
    monkeypatch.setattr(artifacts, "shipped_dir", lambda: target)
    monkeypatch.setattr(ship_module, "shipped_dir", lambda: target)
    monkeypatch.setitem(RECIPES, "breast", RECIPES["breast"].model_copy(
        update={"batch_size": 16, "average_last": 2}))

    ship_module.ship("breast", 0, "9.9.9", cv=3, epochs=2, data=data)
    shipped = read_bundle(target / "breast.card.json")
    assert shipped.card.version == "9.9.9" and "9.9.9" in shipped.card.changelog
    assert shipped.card.metrics["cv_folds"] == 3
    assert shipped.card.reproduce_command.startswith(
        "verticals train medical --task breast --cv 3 --seed 0 --ship 9.9.9 --epochs 2 "
        "--data breastmnist.npz")
    assert model_extra(shipped).network.gradcam_layer == NetworkSpec().gradcam_layer  # no card
    assert (target / shipped.files["weights"].file).is_file()
    assert (target / shipped.files["ood-profile"].file).is_file()
    assert shipped_classifier("breast").predict(images[:2, None] / 255.0).shape == (2,)
