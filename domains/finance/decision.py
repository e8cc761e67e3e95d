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


def label_value(p: float, amount: float, cfg: DecisionConfig) -> float:
    """What an analyst's label is worth on this transaction: the expected cost of the better
    automatic call (approve or decline) that the label would replace. Orders the review queue
    (the cost-aware priority of the labeling queue)."""
    costs = expected_costs(p, amount, cfg)
    return min(costs["approve"], costs["decline"])


def label_reason(p: float, amount: float, value: float) -> str:
    return (
        f"expected cost of a wrong automatic call {value:,.2f} (risk {p:.1%}, amount {amount:,.2f})"
    )


_WINDOW = re.compile(r"^(?P<stem>.+)_(?P<days>\d+)d$")


def _days(n: int) -> str:
    return "day" if n == 1 else f"{n} days"


# One plain-language template per feature stem. Fields: {v} the value, {days} the window as
# words ("day", "7 days"), {n} the window in days, {delay} the label delay, {delay1} delay + 1.
_PHRASES: dict[str, str] = {
    "amount": "amount of {v:,.2f}",
    "cust_n": "card used {v:.0f} times in the last {days}",
    "cust_avg_amount": "card's mean amount over the last {days} is {v:,.2f}",
    "cust_amount_ratio": "amount is {v:.1f}x the card's usual spending",
    "cust_known_frauds": "card had {v:.0f} confirmed frauds (labels older than {delay} days)",
    "term_n": "terminal had {v:.0f} transactions in its labelled {n}-day window",
    "term_risk": "{v:.0%} of the terminal's labelled transactions over {days} were fraud",
    "term_n_recent": "terminal had {v:.0f} transactions in the last {delay1} days",
    "cust_frauds": "card had {v:.0f} confirmed frauds in a {n}-day window "
    "(labels older than {delay} days)",
    "cust_amount_z": "amount is {v:+.1f} standard deviations from the card's usual amount",
    "cust_amount_max_ratio": "amount is {v:.1f}x the card's largest in the last 30 days",
    "cust_hours_since_prev": "{v:.1f} hours since the card's previous transaction",
    "term_amount_ratio": "amount is {v:.1f}x the terminal's usual amount",
    "cust_large": "card made {v:.0f} unusually large transactions ("
    + f"{LARGE_RATIO:g}"
    + "x its usual amount or more) in the last {days}",
}
# When the value is missing (no history to compare with).
_UNKNOWN: dict[str, str] = {
    "cust_amount_ratio": "no recent spending history for this card",
    "cust_amount_z": "no recent spending history for this card",
    "cust_amount_max_ratio": "no recent spending history for this card",
    "cust_hours_since_prev": "first transaction of this card in over a month",
    "term_amount_ratio": "no recent transactions at this terminal",
}


def phrase(feature: str, value: float | None, delay_days: int) -> str:
    """A plain-language reading of one feature value."""
    if value is None:
        return _UNKNOWN.get(feature, f"{feature} is unknown")
    match = _WINDOW.match(feature)
    stem, days = (match["stem"], int(match["days"])) if match else (feature, 0)
    if stem == "hour":
        return f"made at {int(value):02d}:{int(round((value % 1) * 60)) % 60:02d}"
    if stem == "is_weekend":
        return "made at the weekend" if value else "made on a weekday"
    if stem == "is_night":
        return "made at night (before 06:00)" if value else "made during the day"
    template = _PHRASES.get(stem)
    if template is None:
        return f"{feature} = {value:g}"
    return template.format(
        v=value, days=_days(days), n=days, delay=delay_days, delay1=delay_days + 1
    )


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
