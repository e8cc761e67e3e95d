from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
from verticals.domains.finance.model.features import (
    apply_label,
    apply_transaction,
    compute_features,
    epoch_seconds,
    feature_names,
    handbook_feature_names,
    observe,
    previous_feature_names,
    state_from_json,
    state_to_json,
    transaction_features,
)
from verticals.domains.finance.settings import FeatureConfig

CFG = FeatureConfig(windows_days=(1, 7, 30), label_delay_days=7)
NAMES = feature_names(CFG)
T0 = epoch_seconds(datetime(2018, 4, 2, 10, 0, 0))  # a Monday
DAY = 86_400


def feat(row: list[float], name: str) -> float:
    return row[NAMES.index(name)]


def test_names_and_handbook_subset() -> None:
    assert len(NAMES) == 27
    # the previous models' 19 columns keep their positions: new features are appended
    assert NAMES[:19] == previous_feature_names(CFG)
    hb = handbook_feature_names(CFG)
    assert len(hb) == 15 and set(hb) <= set(NAMES)
    assert "TX_FRAUD_SCENARIO" not in NAMES


def test_customer_windows_include_current_and_ratio_uses_prior_mean() -> None:
    customer: dict = {}
    terminal: dict = {}
    apply_transaction(customer, T0 - 10 * DAY, 100.0, 0, CFG)  # 10 days ago: only in 30d
    apply_transaction(customer, T0 - 3 * DAY, 20.0, 0, CFG)  # 3 days ago: 7d and 30d
    apply_transaction(customer, T0 - 3600, 30.0, 0, CFG)  # same day
    row = transaction_features(T0, 50.0, customer, terminal, CFG)
    assert feat(row, "cust_n_1d") == 2 and feat(row, "cust_avg_amount_1d") == 40.0
    assert feat(row, "cust_n_7d") == 3 and math.isclose(feat(row, "cust_avg_amount_7d"), 100 / 3)
    assert feat(row, "cust_n_30d") == 4 and feat(row, "cust_avg_amount_30d") == 50.0
    assert math.isclose(feat(row, "cust_amount_ratio"), 50.0 / 50.0)
    assert feat(row, "hour") == 10.0 and feat(row, "is_weekend") == 0 and feat(row, "is_night") == 0
    # no history: ratio unknown (NaN), terminal risk 0
    empty = transaction_features(T0, 50.0, {}, {}, CFG)
    assert math.isnan(feat(empty, "cust_amount_ratio")) and feat(empty, "term_risk_30d") == 0.0


def test_terminal_labels_count_only_after_the_delay() -> None:
    terminal: dict = {}
    # a fraud 5 days ago (label not known yet) and one 8 days ago (known: older than the delay)
    apply_transaction(terminal, T0 - 5 * DAY, 10.0, 1, CFG)
    apply_transaction(terminal, T0 - 8 * DAY, 10.0, 1, CFG)
    apply_transaction(terminal, T0 - 8 * DAY, 10.0, 0, CFG)
    row = transaction_features(T0, 1.0, {}, terminal, CFG)
    assert feat(row, "term_n_1d") == 2 and feat(row, "term_risk_1d") == 0.5
    assert feat(row, "term_n_recent") == 1  # the 5-day-old one is only counted
    # eight days later the 5-day-old fraud is known too
    later = transaction_features(T0 + 8 * DAY, 1.0, {}, terminal, CFG)
    assert feat(later, "term_n_7d") == 1 and feat(later, "term_risk_7d") == 1.0
    assert feat(later, "term_n_30d") == 3 and math.isclose(feat(later, "term_risk_30d"), 2 / 3)


def test_label_posted_later_equals_label_known_at_once() -> None:
    online: dict = {}
    offline: dict = {}
    apply_transaction(online, T0, 10.0, 0, CFG)
    apply_label(online, T0, +1)
    apply_transaction(offline, T0, 10.0, 1, CFG)
    assert online == offline
    apply_label(online, T0, -1)
    assert online[T0 // DAY][2] == 0


def test_state_json_roundtrip_is_exact_and_old_days_are_dropped() -> None:
    state: dict = {}
    for i, amount in enumerate([0.1, 0.2, 0.3, 1e-7, 123.456]):
        apply_transaction(state, T0 + i * 3600, amount, 0, CFG)
    assert state_from_json(state_to_json(state)) == state
    apply_transaction(state, T0 + 60 * DAY, 1.0, 0, CFG)
    assert list(state) == [(T0 + 60 * DAY) // DAY]


def test_compute_features_is_the_sequential_path() -> None:
    rng = np.random.default_rng(0)
    n = 300
    ts = np.sort(T0 + rng.integers(0, 40 * DAY, size=n))
    cust = rng.integers(0, 5, size=n)
    term = rng.integers(0, 4, size=n)
    amount = rng.uniform(1, 200, size=n).round(2)
    fraud = (rng.random(n) < 0.2).astype(int)
    X = compute_features(ts, cust, term, amount, fraud, CFG)
    cs: dict = {}
    tst: dict = {}
    for i in range(n):
        c = cs.setdefault(int(cust[i]), {})
        t = tst.setdefault(int(term[i]), {})
        # online: scored unlabelled, the analyst's label posted afterwards
        row = observe(int(ts[i]), float(amount[i]), 0, c, t, CFG)
        np.testing.assert_array_equal(np.array(row), X[i])
        apply_label(c, int(ts[i]), int(fraud[i]))
        apply_label(t, int(ts[i]), int(fraud[i]))
    assert X[:, NAMES.index("term_risk_30d")].max() > 0  # labels did reach the features


def test_aware_datetimes_are_converted_to_utc() -> None:
    aware = datetime(2018, 4, 2, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert epoch_seconds(aware) == T0


def test_card_frauds_count_only_once_their_labels_are_known() -> None:
    """A card's confirmed frauds feed cust_frauds_14d / cust_known_frauds (30 days) only after
    the label delay: a label inside the delay must not count, even when already posted."""
    customer: dict = {}
    for days_ago, fraud in ((3, 1), (10, 1), (25, 1), (40, 1)):
        apply_transaction(customer, T0 - days_ago * DAY, 10.0, fraud, CFG)
    row = transaction_features(T0, 10.0, customer, {}, CFG)
    assert feat(row, "cust_frauds_14d") == 1  # 10 days ago; not 3 (inside the delay) nor 25
    assert feat(row, "cust_known_frauds") == 2  # 10 and 25 days ago; 40 is past 7 + 30 days
    # online: an analyst labels yesterday's transaction at once; it counts after the delay only
    online: dict = {}
    observe(T0 - DAY, 10.0, 0, online, {}, CFG)
    apply_label(online, T0 - DAY, +1)
    assert feat(transaction_features(T0, 10.0, online, {}, CFG), "cust_frauds_14d") == 0
    assert feat(transaction_features(T0 + 6 * DAY, 10.0, online, {}, CFG), "cust_frauds_14d") == 0
    assert feat(transaction_features(T0 + 7 * DAY, 10.0, online, {}, CFG), "cust_frauds_14d") == 1
    assert feat(transaction_features(T0 + 21 * DAY, 10.0, online, {}, CFG), "cust_frauds_14d") == 0


def test_behaviour_change_features() -> None:
    customer: dict = {}
    terminal: dict = {}
    for hours_ago, amount in ((50, 10.0), (30, 20.0), (6, 30.0)):
        observe(T0 - hours_ago * 3600, amount, 0, customer, terminal, CFG)
    row = observe(T0, 150.0, 0, customer, terminal, CFG)  # 7.5x the card's mean: large
    mean, std = 20.0, math.sqrt(200.0 / 3.0)
    assert math.isclose(feat(row, "cust_amount_z"), (150.0 - mean) / std)
    assert math.isclose(feat(row, "cust_amount_max_ratio"), 150.0 / 30.0)
    assert math.isclose(feat(row, "cust_hours_since_prev"), 6.0)
    assert math.isclose(feat(row, "term_amount_ratio"), 150.0 / 20.0)
    assert feat(row, "cust_large_7d") == 0  # only earlier transactions count
    later = observe(T0 + 3600, 20.0, 0, customer, terminal, CFG)
    assert feat(later, "cust_large_1d") == 1 and feat(later, "cust_large_30d") == 1
    assert math.isclose(feat(later, "cust_hours_since_prev"), 1.0)
    two_days = transaction_features(T0 + 2 * DAY, 20.0, customer, terminal, CFG)
    assert feat(two_days, "cust_large_1d") == 0 and feat(two_days, "cust_large_7d") == 1
    # no history: every behaviour ratio is unknown (NaN), not a made-up number
    empty = transaction_features(T0, 50.0, {}, {}, CFG)
    for name in ("cust_amount_z", "cust_amount_max_ratio", "cust_hours_since_prev",
                 "term_amount_ratio"):
        assert math.isnan(feat(empty, name)), name


def test_buckets_of_an_older_release_are_padded() -> None:
    """States written before the behaviour features held [n, sum, frauds] per day."""
    day = T0 // DAY
    state = state_from_json({str(day): [2, 30.0, 1]})
    assert state == {day: [2, 30.0, 1, 450.0, 15.0, 0, day * DAY]}
    row = transaction_features(T0 + DAY, 15.0, state, {}, CFG)
    assert feat(row, "cust_n_7d") == 3 and feat(row, "cust_amount_max_ratio") == 1.0
