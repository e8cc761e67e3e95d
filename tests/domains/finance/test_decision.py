"""Every feature the model can use reads as a human phrase in the reason codes."""

from __future__ import annotations

import pytest
from verticals.domains.finance.decision import phrase
from verticals.domains.finance.model.features import feature_names
from verticals.domains.finance.settings import FeatureConfig

NAMES = feature_names(FeatureConfig())


@pytest.mark.parametrize("name", NAMES)
def test_every_feature_has_a_phrase(name: str) -> None:
    assert phrase(name, 2.0, 7) != f"{name} = 2"  # not the generic fallback
    assert phrase(name, None, 7)  # unknown values read too


def test_new_feature_phrases() -> None:
    assert phrase("cust_large_7d", 2.0, 7) == (
        "card made 2 unusually large transactions (3x its usual amount or more) in the last 7 days"
    )
    assert phrase("cust_frauds_14d", 1.0, 7) == (
        "card had 1 confirmed frauds in a 14-day window (labels older than 7 days)"
    )
    assert phrase("cust_amount_z", 4.25, 7).startswith("amount is +4.2 standard deviations")
    assert phrase("cust_amount_max_ratio", None, 7) == "no recent spending history for this card"
