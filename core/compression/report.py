"""The compression report: one row per variant; stored with the model version."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from verticals.core.compression.export import ExportCheck

REQUIRED_VARIANTS = ("torch-fp32", "onnx-fp32", "onnx-int8")


class VariantReport(BaseModel):
    """One variant. Latencies are medians in milliseconds; ``None`` where not measured."""

    name: str
    bytes: int
    latency_ms_b1: float | None = None
    latency_ms_b32: float | None = None
    gpu_latency_ms_b1: float | None = None
    gpu_latency_ms_b32: float | None = None
    metric: float | None = None
    metric_name: str
    metric_drop: float | None = Field(None, description="baseline metric minus this (worse > 0)")
    within_tolerance: bool | None = None
    size_ratio: float | None = Field(None, description="bytes / bytes of onnx-fp32")
    format: str = "onnx"
    path: str | None = None
    notes: str = ""


class CompressionReport(BaseModel):
    model: str
    version: str | None = None
    metric_name: str
    baseline_metric: float
    max_metric_drop: float
    export: ExportCheck | None = None
    variants: list[VariantReport]
    environment: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def variant(self, name: str) -> VariantReport:
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise KeyError(name)

    def summary(self) -> dict[str, Any]:
        """The command's JSON line: model plus the headline fields of each variant."""
        keep = ("name", "bytes", "latency_ms_b1", "latency_ms_b32", "metric", "metric_name")
        extra = ("gpu_latency_ms_b1", "gpu_latency_ms_b32", "metric_drop", "size_ratio")
        rows = []
        for v in self.variants:
            row = {k: getattr(v, k) for k in keep}
            row.update({k: getattr(v, k) for k in extra if getattr(v, k) is not None})
            rows.append(row)
        return {
            "model": self.model,
            "version": self.version,
            "baseline_metric": self.baseline_metric,
            "max_metric_drop": self.max_metric_drop,
            "variants": rows,
        }
