"""Finance settings: feature windows, label delay, decision costs, serving limits.

Read from the environment with prefix ``VERTICALS_FINANCE_`` on first use (never at import).
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from verticals.core.serving.batching import BatchingSettings

MODEL_NAME = "card-fraud-xgb"


class FeatureConfig(BaseSettings):
    """What the features look at. Stored in the model file: serving uses the trained values."""

    model_config = SettingsConfigDict(env_prefix="VERTICALS_FINANCE_", extra="ignore")

    windows_days: tuple[int, ...] = (1, 7, 30)
    label_delay_days: int = Field(7, ge=0, le=60)


class DecisionConfig(BaseSettings):
    """Expected-cost decision. Costs are in the transaction's currency.

    approve costs ``p * missed_fraud_cost_ratio * amount`` (the fraud goes through);
    review costs ``review_cost`` (an analyst looks; a fraud is stopped);
    decline costs ``(1 - p) * false_decline_cost`` (a genuine customer is refused).
    """

    model_config = SettingsConfigDict(env_prefix="VERTICALS_FINANCE_", extra="ignore")

    missed_fraud_cost_ratio: float = Field(1.0, gt=0)
    review_cost: float = Field(5.0, ge=0)
    false_decline_cost: float = Field(50.0, ge=0)


class FinanceBatching(BatchingSettings):
    """Transactions are small: up to 64 per batch, 2,048 waiting."""

    max_batch_size: int = Field(64, ge=1)
    max_queue: int = Field(2048, ge=1)


class ServingConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VERTICALS_FINANCE_", env_nested_delimiter="__", extra="ignore"
    )

    max_batch_rows: int = Field(10_000, ge=1)
    batching: FinanceBatching = Field(default_factory=lambda: FinanceBatching())
    n_reasons: int = Field(3, ge=1, le=10)
    # One by default: the server's event loop keeps a core busy, and an OpenMP parallel region
    # waits for its slowest thread, so on 2 cores two threads made the scoring p99 1.5x worse
    # (169 vs 91-102 ms at 32 connections). Raise it where cores are to spare.
    predict_threads: int = Field(1, ge=1, le=64, description="XGBoost threads per scoring batch")


@lru_cache(maxsize=1)
def decision_config() -> DecisionConfig:
    return DecisionConfig()


@lru_cache(maxsize=1)
def serving_config() -> ServingConfig:
    return ServingConfig()
