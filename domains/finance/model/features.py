"""Transaction features: one code path, offline (over a file) and online (from database state).

State per customer and per terminal is a small dict of day buckets::

    {day: [n, amount_sum, n_frauds, amount_sum_of_squares, amount_max, n_large, last_ts]}

(``day`` = whole days since 1970-01-01; ``n_large`` counts the day's transactions that were
unusually large for their card when they happened, ``last_ts`` is the day's latest epoch second).
Buckets written by older versions hold only the first three fields; :func:`state_from_json` pads
them (spread 0, max = mean, no large ones, latest = the day's start), which only blurs the new
features of states older than the longest window for at most that window.

A transaction at time ``t`` (day ``D``) is described by:

- time: amount, hour of day, weekend, night (hour < 6);
- the customer over the last 1/7/30 days (days D-w+1 .. D, this transaction included): count,
  mean amount; the amount against the customer's previous 30-day mean; the customer's frauds
  whose labels are known (see below);
- the terminal over delayed windows (days D-delay-w .. D-delay-1): count and fraud rate, plus
  its count over the delay period (days D-delay .. D, labels not yet known);
- behaviour change of the card against its own last 30 days (before this transaction): amount
  z-score, amount over the largest amount, counts of unusually large transactions (at least
  ``LARGE_RATIO`` times the card's mean then) per window, hours since the previous transaction;
  the card's frauds confirmed over a delayed 14-day window; the amount over the terminal's mean
  amount of its last 30 days.

A label counts only once it would be known: it lives in its transaction's day bucket and is read
only through the delayed windows (``label_delay_days``, default 7). Offline, labels are added as
the rows stream by (they are only read ``delay`` days later); online they arrive through the
label endpoint. Both paths call :func:`observe` (features, then both states updated) in arrival
order, so the same rows give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
from verticals.domains.finance.settings import FeatureConfig

SECONDS_PER_DAY = 86_400
LARGE_RATIO = 3.0  # "unusually large": at least this many times the card's 30-day mean amount
Buckets = dict[int, list[float]]
# bucket fields
N, SUM, FRAUDS, SUMSQ, MAX, LARGE, LAST = range(7)


def feature_names(cfg: FeatureConfig) -> list[str]:
    """Every feature :func:`transaction_features` computes, in its order."""
    return previous_feature_names(cfg) + BEHAVIOUR_FEATURES + [
        f"cust_large_{w}d" for w in cfg.windows_days
    ]


def previous_feature_names(cfg: FeatureConfig) -> list[str]:
    """The 19 features of models up to 2026.11 (the first columns of :func:`feature_names`)."""
    names = ["amount", "hour", "is_weekend", "is_night"]
    names += [f"cust_n_{w}d" for w in cfg.windows_days]
    names += [f"cust_avg_amount_{w}d" for w in cfg.windows_days]
    names += ["cust_amount_ratio", "cust_known_frauds"]
    names += [f"term_n_{w}d" for w in cfg.windows_days]
    names += [f"term_risk_{w}d" for w in cfg.windows_days]
    names += ["term_n_recent"]
    return names


# Added in 2026.12 (issue 18): appended, so older models' columns keep their positions.
BEHAVIOUR_FEATURES = [
    "cust_frauds_14d",
    "cust_amount_z",
    "cust_amount_max_ratio",
    "cust_hours_since_prev",
    "term_amount_ratio",
]


def handbook_feature_names(cfg: FeatureConfig) -> list[str]:
    """The handbook's 15 features (our ablation baseline)."""
    names = ["amount", "is_weekend", "is_night"]
    names += [f"cust_n_{w}d" for w in cfg.windows_days]
    names += [f"cust_avg_amount_{w}d" for w in cfg.windows_days]
    names += [f"term_n_{w}d" for w in cfg.windows_days]
    names += [f"term_risk_{w}d" for w in cfg.windows_days]
    return names


def horizon_days(cfg: FeatureConfig) -> int:
    """How many days of buckets a state must keep."""
    return max(cfg.windows_days) + cfg.label_delay_days + 1


def epoch_seconds(value: datetime) -> int:
    """Whole seconds since 1970-01-01 (aware datetimes are converted to UTC first)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return int((value - datetime(1970, 1, 1)).total_seconds())


@lru_cache(maxsize=8)
def _classes(bounds: tuple[int, ...], size: int) -> tuple[int, ...]:
    """For each offset 0..size-1: the index of the first bound it is below (len(bounds) if none)."""
    out = []
    for offset in range(size):
        k = 0
        while k < len(bounds) and offset >= bounds[k]:
            k += 1
        out.append(k)
    return tuple(out)


def _prefix(values: list, n: int) -> list:
    out = []
    total = values[0] * 0
    for k in range(n):
        total += values[k]
        out.append(total)
    return out


def transaction_features(
    ts: int, amount: float, customer: Buckets, terminal: Buckets, cfg: FeatureConfig
) -> list[float]:
    """Features of one transaction from the states *before* it (order of :func:`feature_names`)."""
    day = ts // SECONDS_PER_DAY
    seconds = ts - day * SECONDS_PER_DAY
    hour = seconds / 3600.0
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday (weekday 3)
    windows = cfg.windows_days
    delay = cfg.label_delay_days
    nw = len(windows)
    longest = windows[-1]
    span = delay + longest
    classes = _classes(windows, span + 1)
    recent_frauds = delay + 14  # the card's delayed 14-day fraud window: delay < age <= this

    # customer: per window class k, the buckets with windows[k-1] <= age < windows[k]
    c_n = [0] * (nw + 1)
    c_s = [0.0] * (nw + 1)
    c_large = [0] * (nw + 1)
    c_sq = 0.0
    c_max = 0.0
    c_fraud = 0
    c_fraud14 = 0
    c_last = -1
    for bday, bucket in customer.items():
        age = day - bday
        if age < 0 or age > span:
            continue
        k = classes[age]
        c_n[k] += bucket[N]
        c_s[k] += bucket[SUM]
        c_large[k] += bucket[LARGE]
        if k < nw:
            c_sq += bucket[SUMSQ]
            if bucket[MAX] > c_max:
                c_max = bucket[MAX]
        if age > delay:
            c_fraud += bucket[FRAUDS]
            if age <= recent_frauds:
                c_fraud14 += bucket[FRAUDS]
        if bucket[LAST] > c_last:
            c_last = bucket[LAST]
    # terminal: delayed windows (delay < age <= delay + w) and the delay period (age <= delay)
    t_n = [0] * (nw + 1)
    t_f = [0] * (nw + 1)
    t_recent = 0
    t_amount_n = 0
    t_amount_s = 0.0
    for bday, bucket in terminal.items():
        age = day - bday
        if age < 0 or age > span:
            continue
        if age < longest:
            t_amount_n += bucket[N]
            t_amount_s += bucket[SUM]
        if age <= delay:
            t_recent += bucket[N]
            continue
        k = classes[age - delay - 1]
        t_n[k] += bucket[N]
        t_f[k] += bucket[FRAUDS]
    c_n = _prefix(c_n, nw)
    c_s = _prefix(c_s, nw)
    c_large = _prefix(c_large, nw)
    t_n = _prefix(t_n, nw)
    t_f = _prefix(t_f, nw)

    prior_n = c_n[-1]
    prior_mean = c_s[-1] / prior_n if prior_n else math.nan
    row = [amount, hour, float(weekday >= 5), float(hour < 6.0)]
    row += [float(c_n[i] + 1) for i in range(nw)]
    row += [(c_s[i] + amount) / (c_n[i] + 1) for i in range(nw)]
    row += [amount / prior_mean if prior_n and prior_mean > 0 else math.nan, float(c_fraud)]
    row += [float(t_n[i]) for i in range(nw)]
    row += [t_f[i] / t_n[i] if t_n[i] else 0.0 for i in range(nw)]
    row += [float(t_recent)]
    # behaviour change (BEHAVIOUR_FEATURES, then cust_large_*)
    z = math.nan
    if prior_n >= 2:
        var = max(0.0, c_sq / prior_n - prior_mean * prior_mean)
        if var > 1e-12:
            z = (amount - prior_mean) / math.sqrt(var)
    row += [
        float(c_fraud14),
        z,
        amount / c_max if prior_n and c_max > 0 else math.nan,
        (ts - c_last) / 3600.0 if c_last >= 0 else math.nan,
        amount * t_amount_n / t_amount_s if t_amount_n and t_amount_s > 0 else math.nan,
    ]
    row += [float(c_large[i]) for i in range(nw)]
    return row


def is_large(row: list[float], cfg: FeatureConfig) -> int:
    """1 when the transaction of feature row ``row`` is unusually large for its card."""
    ratio = row[4 + 2 * len(cfg.windows_days)]  # cust_amount_ratio
    return int(ratio >= LARGE_RATIO)  # NaN (no history) compares False


def observe(
    ts: int,
    amount: float,
    is_fraud: int,
    customer: Buckets,
    terminal: Buckets,
    cfg: FeatureConfig,
) -> list[float]:
    """The one step both paths take per transaction, in arrival order: its features from the
    states before it, then both states updated (in place). Online ``is_fraud`` is 0: labels
    arrive later through :func:`apply_label`, to the same bucket field."""
    row = transaction_features(ts, amount, customer, terminal, cfg)
    large = is_large(row, cfg)
    apply_transaction(customer, ts, amount, is_fraud, cfg, large)
    apply_transaction(terminal, ts, amount, is_fraud, cfg, large)
    return row


def apply_transaction(
    state: Buckets, ts: int, amount: float, is_fraud: int, cfg: FeatureConfig, large: int = 0
) -> None:
    """Add a transaction to a state (in place), dropping buckets past the horizon."""
    day = ts // SECONDS_PER_DAY
    bucket = state.get(day)
    if bucket is None:
        oldest = day - horizon_days(cfg)
        for old in [d for d in state if d < oldest]:
            del state[old]
        state[day] = [1, amount, is_fraud, amount * amount, amount, large, ts]
    else:
        bucket[N] += 1
        bucket[SUM] += amount
        bucket[FRAUDS] += is_fraud
        bucket[SUMSQ] += amount * amount
        if amount > bucket[MAX]:
            bucket[MAX] = amount
        bucket[LARGE] += large
        if ts > bucket[LAST]:
            bucket[LAST] = ts


def apply_label(state: Buckets, ts: int, delta_frauds: int) -> None:
    """A label arrived (or changed) for a transaction at ``ts``: adjust its day's fraud count."""
    bucket = state.get(ts // SECONDS_PER_DAY)
    if bucket is not None:
        bucket[FRAUDS] = max(0, bucket[FRAUDS] + delta_frauds)


def state_to_json(state: Buckets) -> dict[str, list[float]]:
    return {str(day): list(bucket) for day, bucket in state.items()}


def _bucket(day: int, b: list[float]) -> list[float]:
    n, total = int(b[0]), float(b[1])
    if len(b) >= 7:
        return [n, total, int(b[2]), float(b[3]), float(b[4]), int(b[5]), int(b[6])]
    mean = total / n if n else 0.0  # written by an older version: see the module docstring
    return [n, total, int(b[2]), mean * total, mean, 0, day * SECONDS_PER_DAY]


def state_from_json(data: dict[str, list[float]] | None) -> Buckets:
    if not data:
        return {}
    return {int(day): _bucket(int(day), b) for day, b in data.items()}


def compute_features(
    ts: np.ndarray,
    customer_ids: np.ndarray,
    terminal_ids: np.ndarray,
    amounts: np.ndarray,
    frauds: np.ndarray | None,
    cfg: FeatureConfig,
    *,
    progress: Callable[[int], None] | None = None,
    chunk: int = 50_000,
) -> np.ndarray:
    """Features for rows already in arrival (time) order: float64 array (rows, features).

    ``frauds`` (0/1 per row, or None for unlabelled data) feed the delayed windows exactly as
    labels posted online do. ``progress(n_done)`` is called every ``chunk`` rows.
    """
    n = len(ts)
    out = np.empty((n, len(feature_names(cfg))), dtype=np.float64)
    customers: dict[int, Buckets] = {}
    terminals: dict[int, Buckets] = {}
    labels: Iterable[int] = frauds.astype(np.int64).tolist() if frauds is not None else [0] * n
    rows = zip(
        np.asarray(ts, dtype=np.int64).tolist(),
        np.asarray(customer_ids).tolist(),
        np.asarray(terminal_ids).tolist(),
        np.asarray(amounts, dtype=np.float64).tolist(),
        labels,
        strict=True,
    )
    for i, (t, c, term, amount, fraud) in enumerate(rows):
        cstate = customers.get(c)
        if cstate is None:
            cstate = customers[c] = {}
        tstate = terminals.get(term)
        if tstate is None:
            tstate = terminals[term] = {}
        out[i] = observe(t, amount, fraud, cstate, tstate, cfg)
        if progress is not None and (i + 1) % chunk == 0:
            progress(i + 1)
    if progress is not None:
        progress(n)
    return out
