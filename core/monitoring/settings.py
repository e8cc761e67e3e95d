"""Monitoring settings (``VERTICALS_MONITOR_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class MonitorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VERTICALS_MONITOR_", extra="ignore")

    enabled: bool = Field(True, description="run the evaluator inside the API process")
    interval_s: float = Field(60.0, gt=0, description="seconds between evaluations")
    lease_s: float = Field(180.0, gt=0, description="how long an evaluator's lease lasts")
    for_s: float = Field(120.0, ge=0, description="a condition must hold this long to fire")
    resolve_for_s: float = Field(300.0, ge=0, description="...and be clear this long to resolve")
    resolve_ratio: float = Field(
        0.8, gt=0, le=1, description="hysteresis: clear only below this share of the threshold"
    )
    latency_p95_ms: float = Field(500.0, gt=0, description="latency rule: p95 of recorded ms")
    error_rate: float = Field(
        0.05, gt=0, le=1, description="error-rate rule: share of 5xx answers (shed ones aside)"
    )
    performance_drop: float = Field(
        0.1, gt=0, lt=1, description="performance rule: relative drop below the baseline"
    )
    min_labelled_positives: int = Field(20, ge=1, description="...judged from this many on")
    recent_records: int = Field(1000, ge=10, description="records the latency rule reads")
    shed_rate: float = Field(
        0.05, gt=0, le=1, description="load-shedding rule: share of requests shed (503)"
    )
    traffic_window_s: float = Field(
        300.0, gt=0, description="error-rate and load-shedding rules: over this many seconds"
    )
    traffic_min_requests: int = Field(20, ge=1, description="...judged from this many requests")
    webhook_url: str | None = Field(None, description="POST each alert transition here")
    webhook_secret: SecretStr | None = Field(None, description="HMAC-SHA256 key of the body")
    webhook_attempts: int = Field(4, ge=1, le=10)
    webhook_backoff_s: float = Field(0.5, ge=0, description="first retry delay; doubles")
    webhook_timeout_s: float = Field(5.0, gt=0)
    outbox_grace_s: float = Field(
        120.0,
        ge=0,
        description="an alert transition still unsent this long after it was recorded (its "
        "replica died before sending it) is sent by the next evaluator pass",
    )


def monitor_settings() -> MonitorSettings:
    return MonitorSettings()
