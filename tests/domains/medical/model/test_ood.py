"""The out-of-distribution profile: fitting, calibration, storage, and the shipped models."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from verticals.domains.medical.model.networks import NetworkSpec, build_network  # noqa: E402
from verticals.domains.medical.model.ood import (  # noqa: E402
    fit_profile,
    layer_statistics,
    load_profile_bytes,
    save_profile,
)

DEMO = Path(__file__).resolve().parents[4] / "domains" / "medical" / "demo"


def _blobs(n: int, seed: int) -> np.ndarray:
    """Smooth grey pictures with a bright blob: one family of images."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    centres = rng.uniform(8, 20, size=(n, 2))
    images = np.exp(-((yy - centres[:, :1, None]) ** 2 + (xx - centres[:, 1:, None]) ** 2) / 30)
    return (0.2 + 0.6 * images + rng.normal(0, 0.01, images.shape))[:, None].astype(np.float32)


def test_profile_separates_unlike_images_and_is_calibrated_on_validation(tmp_path):
    torch.manual_seed(0)
    network = build_network(NetworkSpec())
    train, val = _blobs(300, 0), _blobs(200, 1)
    profile = fit_profile(network, train, np.arange(300) % 2, val, quantile=0.95)
    val_scores = profile.score(layer_statistics(network, val, profile.layers))
    assert np.mean(val_scores > 1.0) == pytest.approx(0.05, abs=0.011)  # the cut is the quantile
    noise = np.random.default_rng(2).random((50, 1, 28, 28)).astype(np.float32)
    assert np.all(profile.score(layer_statistics(network, noise, profile.layers)) > 1.0)

    path = save_profile(profile, tmp_path / "p.safetensors")
    again = load_profile_bytes(path.read_bytes())
    assert again.layers == profile.layers and again.cut == pytest.approx(profile.cut)
    np.testing.assert_allclose(
        again.score(layer_statistics(network, val, again.layers)), val_scores, rtol=1e-4
    )


def test_shipped_models_keep_their_own_demo_images_in_scope_and_others_out():
    from verticals.domains.medical.imaging import load_image_file
    from verticals.domains.medical.model.preprocess import preprocess
    from verticals.domains.medical.model.production import shipped_classifier

    def pictures(task: str) -> list[np.ndarray]:
        return [preprocess(load_image_file(p), 28) for p in sorted(glob.glob(f"{DEMO}/{task}/*.dcm"))]

    pneumonia, breast = shipped_classifier("pneumonia"), shipped_classifier("breast")
    assert pneumonia.ood is not None and breast.ood is not None
    for classifier, own, other in ((pneumonia, "pneumonia", "breast"),
                                   (breast, "breast", "pneumonia")):
        assert all(classifier.ood_score(x) <= 1.0 for x in pictures(own)), own
        # a chest X-ray sent as breast ultrasound (or the reverse) is out of scope
        assert sum(classifier.ood_score(x) > 1.0 for x in pictures(other)) >= 3, other
        noise = np.random.default_rng(0).random((1, 64, 64)).astype(np.float32)
        assert classifier.ood_score(noise) > 1.0


def test_ood_score_is_unaffected_by_concurrent_grad_cam_and_predict():
    """Under load the server runs Grad-CAM, predict and the OOD score on one classifier at
    once; the score's feature hooks must neither fail on a Grad-CAM pass nor record it."""
    from concurrent.futures import ThreadPoolExecutor

    from verticals.domains.medical.model.production import shipped_classifier

    classifier = shipped_classifier("pneumonia")
    images = np.random.default_rng(5).random((6, 1, 28, 28)).astype(np.float32) * 0.6
    expected = [classifier.ood_score(x) for x in images]

    def work(i: int) -> float:
        x = images[i % len(images)]
        if i % 3 == 0:
            classifier.gradcam(x)
            return float("nan")
        if i % 3 == 1:
            classifier.predict(x[None])
            return float("nan")
        return classifier.ood_score(x)

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(work, range(60)))
    for i, score in enumerate(results):
        if i % 3 == 2:
            assert score == pytest.approx(expected[i % len(images)], rel=1e-6)
