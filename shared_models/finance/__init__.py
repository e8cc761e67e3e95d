"""The shipped card-fraud model (XGBoost UBJ), its model card and a small demo sample."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
MODEL_FILE = HERE / "card_fraud_xgb.ubj"
CARD_FILE = HERE / "card_fraud_xgb.card.json"
DEMO_FILE = HERE / "demo_transactions.csv"
WHATIF_FILE = HERE / "validation_scores.parquet"
