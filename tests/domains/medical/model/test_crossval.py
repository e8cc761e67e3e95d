from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from verticals.core.db import session_scope
from verticals.core.errors import InvalidInput
from verticals.core.registry import production_version
from verticals.domains.medical.model import load_classifier, train_task
from verticals.domains.medical.model.crossval import cross_validate, stratified_folds
from verticals.domains.medical.model.training import RECIPES


def _tiny_npz(tmp_path: Path, n: int = 90) -> Path:
    """Bright-centre images are class 1 (two thirds of them): learnable in one epoch."""
    rng = np.random.default_rng(0)
    labels = (np.arange(n) % 3 != 0).astype(np.uint8)
    images = (rng.random((n, 28, 28)) * 80).astype(np.uint8)
    images[labels == 1, 9:19, 9:19] += 150
    path = tmp_path / "tiny.npz"
    cut = n - 24
    np.savez(path, train_images=images[:cut], train_labels=labels[:cut, None],
             val_images=images[cut:], val_labels=labels[cut:, None])
    return path


@pytest.fixture
def tiny_recipe(monkeypatch):
    monkeypatch.setitem(RECIPES, "pneumonia", RECIPES["pneumonia"].model_copy(
        update={"batch_size": 16, "average_last": 2}))


def test_stratified_folds_are_disjoint_cover_everything_and_keep_the_balance():
    labels = (np.arange(103) % 4 == 0).astype(np.int64)  # 26 positives, 77 negatives
    folds = stratified_folds(labels, 5)
    assert len(folds) == 5
    joined = np.concatenate(folds)
    assert sorted(joined.tolist()) == list(range(103))  # covers all, each index once
    for fold in folds:
        assert abs(labels[fold].sum() - 26 / 5) < 1  # 5 or 6 positives per fold
        assert abs(len(fold) - 103 / 5) <= 1  # sizes differ by one at most
    again = stratified_folds(labels, 5)
    assert all(np.array_equal(a, b) for a, b in zip(folds, again, strict=True))  # fixed seed
    other = stratified_folds(labels, 5, seed=1)
    assert not all(np.array_equal(a, b) for a, b in zip(folds, other, strict=True))


@pytest.mark.parametrize("k", [1, 0, True, 2.0, 27])
def test_stratified_folds_refuse_a_bad_k(k):
    labels = (np.arange(103) % 4 == 0).astype(np.int64)
    with pytest.raises(ValueError, match="k"):
        stratified_folds(labels, k)


def test_cross_validate_scores_every_image_once_with_cross_fitted_thresholds(
    tmp_path, tiny_recipe
):
    cv, oof = cross_validate("pneumonia", _tiny_npz(tmp_path), k=3, epochs=1)
    assert len(oof.logits) == 90 and np.isfinite(oof.logits).all()  # train + val pooled
    assert [f.n_heldout for f in cv.folds] == [30, 30, 30]
    assert sum(f.positives_heldout for f in cv.folds) == 60
    for name in ("cv_roc_auc", "cv_accuracy", "cv_balanced_accuracy", "cv_nll_calibrated"):
        assert {f"{name}_mean", f"{name}_sd"} <= set(cv.metrics)
    assert cv.metrics["cv_roc_auc_mean"] > 0.9 and cv.metrics["cv_folds"] == 3
    assert cv.metrics["decision_threshold"] == cv.threshold and cv.platt.scale > 0


def test_train_with_cv_registers_a_calibrated_model_with_its_cv_card(db, tmp_path, tiny_recipe):
    report = train_task("pneumonia", _tiny_npz(tmp_path), 1, 0, epochs=1, cv=3, progress=False)
    assert report.cv == 3 and len(report.cv_folds) == 3
    assert report.registered and report.promoted  # nothing was in production
    assert report.threshold == report.metrics["decision_threshold"]
    classifier = load_classifier("pneumonia")
    assert classifier.version == report.version and classifier.threshold == report.threshold
    with session_scope() as session:
        row = production_version(session, "medical", "pneumonia")
    assert row.card.reproduce_command.startswith("verticals train medical --task pneumonia --cv 3")
    assert {"cv_roc_auc_mean", "cv_roc_auc_sd", "cv_accuracy_mean", "cv_accuracy_sd",
            "calibration_scale", "train_seconds"} <= set(row.card.metrics)
    assert "Platt" in row.card.limitations and "balanced accuracy" in row.card.limitations
    assert "cross-validation" in row.card.evaluation_data


def test_cv_refuses_several_processes_or_fine_tuning(tmp_path):
    with pytest.raises(InvalidInput):
        train_task("pneumonia", _tiny_npz(tmp_path), 2, 0, cv=3, register=False)
    with pytest.raises(InvalidInput):
        train_task("pneumonia", _tiny_npz(tmp_path), 1, 0, cv=3, init_from="breast",
                   register=False)
    with pytest.raises(InvalidInput, match="folds"):
        train_task("pneumonia", _tiny_npz(tmp_path, n=30), 1, 0, cv=20, register=False)


def test_a_saved_cross_validation_is_reused_only_for_the_same_recipe(tmp_path, tiny_recipe):
    from verticals.domains.medical.model.crossval import train_with_cv

    data = _tiny_npz(tmp_path)
    cv, _ = cross_validate("pneumonia", data, k=3, epochs=1)
    report = train_with_cv("pneumonia", data, 0, 3, epochs=1, register=False, progress=False,
                           cross_validation=cv)
    assert report.metrics["cv_roc_auc_mean"] == cv.metrics["cv_roc_auc_mean"]
    assert report.threshold == cv.threshold
    for wrong in ({"k": 4}, {"seed": 1}, {"recipe": {**cv.recipe, "label_smoothing": 0.2}}):
        with pytest.raises(InvalidInput, match="another"):
            train_with_cv("pneumonia", data, 0, 3, epochs=1, register=False,
                          cross_validation=cv.model_copy(update=wrong))
