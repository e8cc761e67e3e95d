"""From a probability to an answer: expected-cost decision and plain-language reasons."""

from __future__ import annotations

import math
import re

import numpy as np
from verticals.domains.finance.model.features import LARGE_RATIO
from verticals.domains.finance.schemas import Decision, Reason
from verticals.domains.finance.settings import DecisionConfig


def expected_costs(p: float, amount: float, cfg: DecisionConfig) -> dict[Decision, float]:
    return {
        "approve": p * cfg.missed_fraud_cost_ratio * amount,
        "review": cfg.review_cost,
        "decline": (1.0 - p) * cfg.false_decline_cost,
    }


def decide(p: float, amount: float, cfg: DecisionConfig) -> Decision:
    """The action with the lowest expected cost (ties favour the milder action)."""
    costs = expected_costs(p, amount, cfg)
    return min(("approve", "review", "decline"), key=lambda action: costs[action])


_WINDOW = re.compile(r"^(?P<stem>.+)_(?P<days>\d+)d$")


def _days(n: int) -> str:
    return "day" if n == 1 else f"{n} days"


def phrase(feature: str, value: float | None, delay_days: int) -> str:
    """A plain-language reading of one feature value."""
    if value is None:
        if feature in ("cust_amount_ratio", "cust_amount_z", "cust_amount_max_ratio"):
            return "no recent spending history for this card"
        if feature == "cust_hours_since_prev":
            return "first transaction of this card in over a month"
        if feature == "term_amount_ratio":
            return "no recent transactions at this terminal"
        return f"{feature} is unknown"
    match = _WINDOW.match(feature)
    stem, days = (match["stem"], int(match["days"])) if match else (feature, 0)
    if stem == "amount":
        return f"amount of {value:,.2f}"
    if stem == "hour":
        return f"made at {int(value):02d}:{int(round((value % 1) * 60)) % 60:02d}"
    if stem == "is_weekend":
        return "made at the weekend" if value else "made on a weekday"
    if stem == "is_night":
        return "made at night (before 06:00)" if value else "made during the day"
    if stem == "cust_n":
        return f"card used {value:.0f} times in the last {_days(days)}"
    if stem == "cust_avg_amount":
        return f"card's mean amount over the last {_days(days)} is {value:,.2f}"
    if stem == "cust_amount_ratio":
        return f"amount is {value:.1f}x the card's usual spending"
    if stem == "cust_known_frauds":
        return f"card had {value:.0f} confirmed frauds (labels older than {delay_days} days)"
    if stem == "term_n":
        return f"terminal had {value:.0f} transactions in its labelled {days}-day window"
    if stem == "term_risk":
        return f"{value:.0%} of the terminal's labelled transactions over {_days(days)} were fraud"
    if stem == "term_n_recent":
        return f"terminal had {value:.0f} transactions in the last {delay_days + 1} days"
    if stem == "cust_frauds":
        return (
            f"card had {value:.0f} confirmed frauds in a {days}-day window "
            f"(labels older than {delay_days} days)"
        )
    if stem == "cust_amount_z":
        return f"amount is {value:+.1f} standard deviations from the card's usual amount"
    if stem == "cust_amount_max_ratio":
        return f"amount is {value:.1f}x the card's largest in the last 30 days"
    if stem == "cust_hours_since_prev":
        return f"{value:.1f} hours since the card's previous transaction"
    if stem == "term_amount_ratio":
        return f"amount is {value:.1f}x the terminal's usual amount"
    if stem == "cust_large":
        return (
            f"card made {value:.0f} unusually large transactions ({LARGE_RATIO:g}x its usual "
            f"amount or more) in the last {_days(days)}"
        )
    return f"{feature} = {value:g}"


def top_reasons(
    values: np.ndarray, contributions: np.ndarray, names: list[str], n: int, delay_days: int
) -> list[Reason]:
    """The ``n`` features that pushed the risk up most (by pred_contribs); if none pushed it up,
    those that pulled it down most."""
    order = np.argsort(-contributions, kind="stable")
    chosen = [i for i in order[:n] if contributions[i] > 0]
    if not chosen:
        chosen = list(np.argsort(np.abs(contributions), kind="stable")[::-1][:n])
    reasons = []
    for i in chosen:
        raw = float(values[i])
        value = raw if math.isfinite(raw) else None
        reasons.append(
            Reason(
                feature=names[i],
                value=value,
                contribution=round(float(contributions[i]), 6),
                phrase=phrase(names[i], value, delay_days),
            )
        )
    return reasons
