"""Prometheus metrics shared by every route and domain (one process-wide registry)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "verticals_http_requests_total",
    "HTTP requests by route template, method, status and domain",
    ["route", "method", "status", "domain"],
)
REQUEST_LATENCY = Histogram(
    "verticals_http_request_seconds",
    "HTTP request latency by route template and domain",
    ["route", "domain"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
SHED_REQUESTS = Counter(
    "verticals_shed_requests_total",
    "Requests refused to shed load (503 with Retry-After) by domain",
    ["domain"],
)
PREDICTIONS = Counter(
    "verticals_predictions_total",
    "Predictions served by domain and model version",
    ["domain", "model", "version"],
)
PREDICTION_LATENCY = Histogram(
    "verticals_prediction_seconds",
    "Model inference latency by domain and model",
    ["domain", "model"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)


def observe_prediction(
    domain: str, model: str, version: str, seconds: float, count: int = 1
) -> None:
    PREDICTIONS.labels(domain, model, version).inc(count)
    PREDICTION_LATENCY.labels(domain, model).observe(seconds)
