from __future__ import annotations

import pandas as pd
import pytest
from verticals.domains.finance.model.whatif import at_threshold, pr_curve
from verticals.domains.finance.settings import DecisionConfig


def scores() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "day": [0, 0, 1, 1],
            "amount": [100.0, 10.0, 50.0, 20.0],
            "label": [1, 0, 1, 0],
            "probability": [0.9, 0.8, 0.3, 0.1],
            "weight": [1.0, 10.0, 1.0, 10.0],
        }
    )


def test_threshold_counts_use_weights() -> None:
    costs = DecisionConfig(missed_fraud_cost_ratio=1.0, review_cost=2.0, false_decline_cost=0)
    out = at_threshold(scores(), 0.5, costs)
    assert out.alerts_per_day == pytest.approx(11 / 2)
    assert out.precision == pytest.approx(1 / 11)
    assert out.recall == pytest.approx(0.5)
    assert out.missed_fraud_amount == 50.0
    assert out.cost == pytest.approx(50.0 + 11 * 2.0)


def test_pr_curve_ends_at_full_recall() -> None:
    curve = pr_curve(scores())
    assert curve["recall"].iloc[-1] == pytest.approx(1.0)
    assert curve["precision"].iloc[0] == pytest.approx(1.0)
