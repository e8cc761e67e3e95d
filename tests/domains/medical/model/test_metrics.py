from __future__ import annotations

import numpy as np
import pytest
from verticals.domains.medical.model.metrics import (
    accuracy,
    balanced_accuracy,
    choose_balanced_threshold,
    choose_threshold,
)


def _scores(positive_share: float, n: int = 6000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores of one fixed model: negatives ~ N(0, 1), positives ~ N(2, 1)."""
    rng = np.random.default_rng(seed)
    targets = (rng.random(n) < positive_share).astype(np.int64)
    return targets, rng.normal(2.0 * targets, 1.0)


def test_balanced_accuracy():
    targets = np.array([1, 1, 1, 0])
    assert balanced_accuracy(targets, np.array([0.9, 0.8, 0.2, 0.1]), 0.5) == pytest.approx(
        (2 / 3 + 1) / 2
    )
    assert np.isnan(balanced_accuracy(np.ones(3), np.ones(3)))
    with pytest.raises(ValueError, match="both classes"):
        choose_balanced_threshold(np.ones(3), np.ones(3))


def test_balanced_threshold_holds_accuracy_under_a_shift_of_class_balance():
    chosen_on = _scores(0.74)  # the training / validation balance
    shifted = _scores(0.38, seed=1)  # new patients: far fewer positives

    by_accuracy = choose_threshold(*chosen_on)
    balanced = choose_balanced_threshold(*chosen_on)
    assert by_accuracy < 0.8  # leans to the majority (positive) class
    assert balanced == pytest.approx(1.0, abs=0.15)  # midway: no prior built in

    assert accuracy(*shifted, balanced) > accuracy(*shifted, by_accuracy) + 0.03
    # ...and the balanced cut barely moves with the balance of the data that chooses it
    assert choose_balanced_threshold(*_scores(0.3, seed=2)) == pytest.approx(balanced, abs=0.15)
    assert abs(choose_threshold(*_scores(0.3, seed=2)) - by_accuracy) > 0.5


def test_balanced_threshold_maximises_balanced_accuracy():
    targets, scores = _scores(0.7, n=500, seed=3)
    best = choose_balanced_threshold(targets, scores)
    grid = max(balanced_accuracy(targets, scores, t) for t in np.linspace(-3, 5, 4001))
    assert balanced_accuracy(targets, scores, best) >= grid - 1e-12
