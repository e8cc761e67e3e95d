from __future__ import annotations

import numpy as np
import torch
from verticals.domains.medical.model.data import ImageSet
from verticals.domains.medical.model.networks import NetworkSpec
from verticals.domains.medical.model.semisupervised import (
    SemiSupervised,
    select_pseudo_labels,
    strong_transforms,
)
from verticals.domains.medical.model.tasks import get_task
from verticals.domains.medical.model.training import RECIPES, fit_network


def test_threshold_keeps_only_confident_images_both_ways():
    probs = torch.tensor([0.99, 0.60, 0.02, 0.94, 0.96, 0.06])
    index, labels = select_pseudo_labels(probs, 0.95, prior=None)
    assert index.tolist() == [0, 2, 4]  # 0.94 / 0.06 fall short: max(p, 1-p) < 0.95
    assert labels.tolist() == [1, 0, 1]


def test_class_balance_keeps_the_labelled_prior_most_confident_first():
    probs = torch.tensor([0.96, 0.999, 0.97, 0.98, 0.995, 0.01, 0.5, 0.97])
    # 6 confident positives, 1 confident negative; prior 0.25: positives capped at
    # ceil(0.25 * 8) = 2, then 1 : 3 with the one negative -> the most confident positive
    index, labels = select_pseudo_labels(probs, 0.95, prior=0.25)
    assert index.tolist() == [1, 5] and labels.tolist() == [1, 0]
    index, labels = select_pseudo_labels(probs, 0.95, prior=0.75)  # 3 : 1
    assert index.tolist() == [1, 3, 4, 5] and labels.tolist() == [1, 1, 1, 0]
    only_positives = torch.tensor([0.99, 0.98, 0.97, 0.4])
    assert len(select_pseudo_labels(only_positives, 0.95, prior=0.75)[0]) == 0
    assert len(select_pseudo_labels(only_positives, 0.95, prior=None)[0]) == 3


def test_strong_augmentation_changes_images_and_stays_in_range():
    x = torch.full((1, 28, 28), 0.5)
    out = torch.as_tensor(strong_transforms(0)(x))
    assert out.shape == x.shape and not torch.equal(out, x)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


def _bright_centre(n: int, seed: int) -> ImageSet:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.7).astype(np.int64)  # 1 = pneumonia, the majority, as in data
    images = (rng.random((n, 1, 28, 28)) * 0.3).astype(np.float32)
    images[labels == 1, :, 9:19, 9:19] += 0.6
    return ImageSet(images, labels)


def _fit(unlabelled: np.ndarray | None, seed: int = 0):
    spec = get_task("pneumonia")
    recipe = RECIPES["pneumonia"].model_copy(
        update={"batch_size": 16, "average_last": None, "epochs": 2}
    )
    return fit_network(
        spec,
        recipe,
        _bright_centre(48, 1),
        _bright_centre(32, 2),
        seed=seed,
        network=NetworkSpec(input_size=28),
        select="last",
        progress=False,
        max_seconds=None,
        unlabelled=unlabelled,
        semi=SemiSupervised(threshold=0.6, ratio=2),
    )


def test_short_run_with_unlabelled_images_reports_pseudo_labels_and_is_deterministic():
    torch.set_num_threads(1)
    unlabelled = _bright_centre(64, 3).images
    first = _fit(unlabelled)
    counts = first.pseudo_labels
    assert counts is not None and counts["unlabelled_seen"] == 2 * 2 * 48  # μ x B x steps
    assert counts["pneumonia"] + counts["normal"] > 0
    assert first.result.epochs_run == 2 and np.isfinite(first.result.history[-1].train_loss)
    again = _fit(unlabelled)
    assert again.pseudo_labels == counts
    for a, b in zip(
        first.model.state_dict().values(), again.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert _fit(None).pseudo_labels is None  # labelled only: the plain recipe
