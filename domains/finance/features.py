"""Transaction features: one code path, offline (over a file) and online (from database state).

State per customer and per terminal is a small dict of day buckets::

    {day: [n_transactions, amount_sum, n_known_frauds]}     # day = whole days since 1970-01-01

A transaction at time ``t`` (day ``D``) is described by:

- time: amount, hour of day, weekend, night (hour < 6);
- the customer over the last 1/7/30 days (days D-w+1 .. D, this transaction included): count,
  mean amount; the amount against the customer's previous 30-day mean; the customer's frauds
  whose labels are known (see below);
- the terminal over delayed windows (days D-delay-w .. D-delay-1): count and fraud rate, plus
  its count over the delay period (days D-delay .. D, labels not yet known).

A label counts only once it would be known: it lives in its transaction's day bucket and is read
only through the delayed windows (``label_delay_days``, default 7). Offline, labels are added as
the rows stream by (they are only read ``delay`` days later); online they arrive through the
label endpoint. Both paths call :func:`transaction_features` then :func:`apply_transaction`, in
arrival order, so the same rows give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np
from verticals.domains.finance.config import FeatureConfig

SECONDS_PER_DAY = 86_400
Buckets = dict[int, list[float]]


def feature_names(cfg: FeatureConfig) -> list[str]:
    names = ["amount", "hour", "is_weekend", "is_night"]
    names += [f"cust_n_{w}d" for w in cfg.windows_days]
    names += [f"cust_avg_amount_{w}d" for w in cfg.windows_days]
    names += ["cust_amount_ratio", "cust_known_frauds"]
    names += [f"term_n_{w}d" for w in cfg.windows_days]
    names += [f"term_risk_{w}d" for w in cfg.windows_days]
    names += ["term_n_recent"]
    return names


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

    # customer: per window class k, the buckets with windows[k-1] <= age < windows[k]
    c_n = [0] * (nw + 1)
    c_s = [0.0] * (nw + 1)
    c_fraud = 0
    for bday, bucket in customer.items():
        age = day - bday
        if age < 0 or age > span:
            continue
        k = classes[age]
        c_n[k] += bucket[0]
        c_s[k] += bucket[1]
        if age > delay:
            c_fraud += bucket[2]
    # terminal: delayed windows (delay < age <= delay + w) and the delay period (age <= delay)
    t_n = [0] * (nw + 1)
    t_f = [0] * (nw + 1)
    t_recent = 0
    for bday, bucket in terminal.items():
        age = day - bday
        if age < 0 or age > span:
            continue
        if age <= delay:
            t_recent += bucket[0]
            continue
        k = classes[age - delay - 1]
        t_n[k] += bucket[0]
        t_f[k] += bucket[2]
    c_n = _prefix(c_n, nw)
    c_s = _prefix(c_s, nw)
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
    return row


def apply_transaction(
    state: Buckets, ts: int, amount: float, is_fraud: int, cfg: FeatureConfig
) -> None:
    """Add a transaction to a state (in place), dropping buckets past the horizon."""
    day = ts // SECONDS_PER_DAY
    bucket = state.get(day)
    if bucket is None:
        oldest = day - horizon_days(cfg)
        for old in [d for d in state if d < oldest]:
            del state[old]
        state[day] = [1, amount, is_fraud]
    else:
        bucket[0] += 1
        bucket[1] += amount
        bucket[2] += is_fraud


def apply_label(state: Buckets, ts: int, delta_frauds: int) -> None:
    """A label arrived (or changed) for a transaction at ``ts``: adjust its day's fraud count."""
    bucket = state.get(ts // SECONDS_PER_DAY)
    if bucket is not None:
        bucket[2] = max(0, bucket[2] + delta_frauds)


def state_to_json(state: Buckets) -> dict[str, list[float]]:
    return {str(day): list(bucket) for day, bucket in state.items()}


def state_from_json(data: dict[str, list[float]] | None) -> Buckets:
    if not data:
        return {}
    return {int(day): [int(b[0]), float(b[1]), int(b[2])] for day, b in data.items()}


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
        out[i] = transaction_features(t, amount, cstate, tstate, cfg)
        apply_transaction(cstate, t, amount, fraud, cfg)
        apply_transaction(tstate, t, amount, fraud, cfg)
        if progress is not None and (i + 1) % chunk == 0:
            progress(i + 1)
    if progress is not None:
        progress(n)
    return out
