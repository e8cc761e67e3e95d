"""The one rule that decides whether a model replaces another: a metric, its direction, and how
much worse the newcomer may be. Retrained versions use it with no tolerance (at least as good
as production, ties to the newer); compressed variants with the domain's tolerance."""

from __future__ import annotations

import math
from dataclasses import dataclass


class MetricGate:
    """Declared by the dataclasses that gate something (compression targets, promotions)."""

    name: str  # "<domain>/<model>"
    higher_is_better: bool
    max_metric_drop: float

    def _check_gate(self) -> None:
        if "/" not in self.name:
            raise ValueError(f"name must be '<domain>/<model>', got {self.name!r}")
        if not 0 <= self.max_metric_drop < 1:
            raise ValueError("max_metric_drop must be in [0, 1)")

    def metric_drop(self, baseline: float, value: float) -> float:
        """How much worse ``value`` is than ``baseline`` (positive = worse)."""
        return baseline - value if self.higher_is_better else value - baseline

    def accepts(self, baseline: float | None, value: float | None) -> bool:
        """Whether ``value`` may replace ``baseline``: nothing to beat, or no worse than the
        tolerance. A missing or non-finite ``value`` never passes."""
        if value is None or not math.isfinite(value):
            return False
        if baseline is None or not math.isfinite(baseline):
            return True
        return self.metric_drop(baseline, value) <= self.max_metric_drop


@dataclass
class PromotionGate(MetricGate):
    """A retrained version replaces production when at least as good (ties to the newer)."""

    name: str
    higher_is_better: bool = True
    max_metric_drop: float = 0.0

    def __post_init__(self) -> None:
        self._check_gate()
