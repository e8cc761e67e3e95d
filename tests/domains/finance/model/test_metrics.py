from __future__ import annotations

import numpy as np
import pytest
from verticals.domains.finance.model.metrics import card_precision_at_k, fraud_metrics


def test_card_precision_groups_cards_per_day_and_drops_caught_cards() -> None:
    # day 0: card 1 (fraud, two txs, max score 0.9), card 2 (genuine, 0.8), card 3 (genuine, 0.1)
    # day 1: card 1 again (fraud, 0.95, but already caught), card 3 (fraud, 0.2), card 2 (0.5)
    days = np.array([0, 0, 0, 0, 1, 1, 1])
    cards = np.array([1, 1, 2, 3, 1, 3, 2])
    labels = np.array([0, 1, 0, 0, 1, 1, 0])
    scores = np.array([0.9, 0.3, 0.8, 0.1, 0.95, 0.2, 0.5])
    # k=1: day0 top card 1 (fraud) -> 1.0; day1 card 1 excluded, top card 2 (genuine) -> 0.0
    assert card_precision_at_k(days, cards, labels, scores, k=1) == pytest.approx(0.5)
    # k=2: day0 {1, 2} -> 1/2; day1 (card 1 dropped) {2, 3} -> 1/2
    assert card_precision_at_k(days, cards, labels, scores, k=2) == pytest.approx(0.5)


def test_fraud_metrics_keys_and_perfect_ranking() -> None:
    days = np.zeros(4, dtype=int)
    cards = np.arange(4)
    labels = np.array([0, 0, 1, 1])
    out = fraud_metrics(days, cards, labels, np.array([0.1, 0.2, 0.8, 0.9]))
    assert out["roc_auc"] == 1.0 and out["average_precision"] == 1.0
    assert out["card_precision_at_100"] == pytest.approx(2 / 100)
    assert out["n_transactions"] == 4 and out["n_frauds"] == 2
