"""A stream replayed through the API gives the same features as the offline path."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import select
from verticals.core.db import session_scope
from verticals.domains.finance.model.data import frame_features, validate_frame
from verticals.domains.finance.settings import FeatureConfig
from verticals.domains.finance.tables import TransactionRow


def synthetic_stream(n: int = 160, days: int = 20, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2018-08-01")
    offsets = np.sort(rng.integers(0, days * 86_400, size=n))
    return pd.DataFrame(
        {
            "TRANSACTION_ID": np.arange(n),
            "TX_DATETIME": start + pd.to_timedelta(offsets, unit="s"),
            "CUSTOMER_ID": rng.integers(0, 6, size=n),
            "TERMINAL_ID": rng.integers(0, 4, size=n),
            # a tenth of the amounts five times larger, as a compromised card's would be
            "TX_AMOUNT": (rng.uniform(1, 300, size=n) * np.where(rng.random(n) < 0.1, 5, 1))
            .round(2),
            "TX_FRAUD": (rng.random(n) < 0.25).astype(int),
        }
    )


def test_replay_through_api_matches_offline_features(client, make_key, auth) -> None:
    key = make_key(["finance:score", "finance:review"])
    frame = validate_frame(synthetic_stream())
    for row in frame.itertuples(index=False):
        body = {
            "transaction_id": str(row.TRANSACTION_ID),
            "tx_datetime": row.TX_DATETIME.isoformat(),
            "customer_id": str(row.CUSTOMER_ID),
            "terminal_id": str(row.TERMINAL_ID),
            "amount": float(row.TX_AMOUNT),
        }
        r = client.post("/v1/finance/transactions:score", json=body, headers=auth(key))
        assert r.status_code == 200, r.text
        # the label arrives after scoring; it only counts once the delay has passed
        r = client.post(
            f"/v1/finance/transactions/{row.TRANSACTION_ID}/label",
            json={"is_fraud": bool(row.TX_FRAUD)},
            headers=auth(key),
        )
        assert r.status_code == 200, r.text
    offline = frame_features(frame, FeatureConfig())
    with session_scope() as s:
        rows = {r.transaction_id: r.features for r in s.scalars(select(TransactionRow))}
    online = np.array(
        [[np.nan if v is None else v for v in rows[str(t)]] for t in frame["TRANSACTION_ID"]]
    )
    np.testing.assert_array_equal(online, offline)
    # the delayed terminal/customer label features were exercised, not all zero
    names = __import__(
        "verticals.domains.finance.model.features", fromlist=["feature_names"]
    ).feature_names(FeatureConfig())
    for name in ("term_risk_30d", "cust_known_frauds", "cust_frauds_14d", "cust_large_7d"):
        assert offline[:, names.index(name)].max() > 0, name
    for name in ("cust_amount_z", "cust_hours_since_prev", "term_amount_ratio"):
        assert np.isfinite(offline[:, names.index(name)]).any(), name
