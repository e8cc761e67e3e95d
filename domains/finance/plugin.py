"""The finance domain plugin: real-time card-fraud scoring (entry point ``finance``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verticals.core.errors import ModelUnavailable
from verticals.core.plugins import DemoRequest, Domain, DomainStatus

if TYPE_CHECKING:
    from fastapi import APIRouter
    from verticals.core.auth import Principal
    from verticals.core.compression.trees import TreeCompressionTarget
    from verticals.core.labeling.simulate import Learner
    from verticals.core.monitoring.spec import WatchSpec
    from verticals.domains.finance.retraining import FinanceRetrainRecipe
    from verticals.domains.finance.runtime import Runtime
    from verticals.domains.finance.shadow import FinanceShadowSource


class FinanceDomain(Domain):
    name = "finance"
    title = "Card fraud"
    description = (
        "Real-time card-fraud scoring with online features, reason codes and an analyst "
        "review queue (XGBoost)."
    )

    def __init__(self) -> None:
        self._runtime: Runtime | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ serving
    def runtime(self) -> Runtime:
        runtime = self._runtime
        if runtime is None:
            raise ModelUnavailable("the finance model is not loaded (setup() has not run)")
        return runtime

    def router(self) -> APIRouter:
        from verticals.domains.finance.api import build_router

        return build_router(self.runtime)

    def ensure_production_model(self) -> str:
        from verticals.domains.finance.model.production import ensure_production_model

        return ensure_production_model()

    def setup(self) -> None:
        from verticals.domains.finance.model.production import load_production_model
        from verticals.domains.finance.runtime import Runtime
        from verticals.domains.finance.settings import serving_config

        with self._lock:
            if self._runtime is None:
                serving = serving_config()
                model = load_production_model(nthread=serving.predict_threads)
                self._runtime = Runtime.start(model, serving)

    def close(self) -> None:
        with self._lock:
            if self._runtime is not None:
                self._runtime.close()
                self._runtime = None

    def status(self) -> DomainStatus:
        runtime = self._runtime
        if runtime is None:
            return DomainStatus(ready=False, detail="model not loaded")
        return DomainStatus(
            ready=runtime.batcher.running,
            model_version=runtime.service.version,
            detail=f"queue depth {runtime.batcher.queue_depth}",
        )

    # ------------------------------------------------------------ offline
    def evaluate(self, data_file: Path, **options: Any) -> dict[str, float]:
        """Options: ``since`` (date/datetime/ISO string): metrics over rows at or after it."""
        from verticals.domains.finance.model.evaluation import evaluate_file
        from verticals.domains.finance.model.production import load_production_model

        since = options.get("since")
        if isinstance(since, str):
            since = datetime.fromisoformat(since)
        if since is not None and not isinstance(since, date | datetime):
            raise TypeError("since must be a date, datetime or ISO string")
        self.ensure_production_model()
        return evaluate_file(Path(data_file), load_production_model(nthread=2), since=since)

    def commands(self) -> Mapping[str, Callable[..., Any]]:
        from verticals.domains.finance import cli

        return {
            "train": cli.train,
            "evaluate": cli.evaluate,
            "score": cli.score,
            "bench": cli.bench,
            "backtest": cli.backtest,
        }

    def migrations_dir(self) -> Path | None:
        return Path(__file__).parent / "migrations"

    def demo_data(self) -> Path | None:
        from verticals.shared_models.finance import DEMO_FILE

        return DEMO_FILE

    def demo_requests(self) -> list[DemoRequest]:
        """The shipped demo transactions, scored as one CSV batch (idempotent per id)."""
        demo = self.demo_data()
        return [
            DemoRequest(
                path="/transactions:batch",
                files={"file": (demo.name, demo.read_bytes(), "text/csv")},
            )
        ]

    def labeling_learner(
        self, task: str | None, data: Path | None, eval_data: Path | None
    ) -> Learner:
        from verticals.domains.finance.labeling import simulation_learner

        return simulation_learner(task, data, eval_data)

    def retraining(self) -> FinanceRetrainRecipe:
        from verticals.domains.finance.retraining import FinanceRetrainRecipe

        return FinanceRetrainRecipe.from_settings()

    def shadow(self) -> FinanceShadowSource:
        from verticals.domains.finance.shadow import FinanceShadowSource

        return FinanceShadowSource()

    def compression_target(
        self, model_name: str, data_file: Path | None, split: str
    ) -> TreeCompressionTarget | None:
        from verticals.domains.finance.model.compression import finance_compression_target

        self.ensure_production_model()
        return finance_compression_target(model_name, data_file, split, self.demo_data())

    def monitoring(self) -> WatchSpec:
        from verticals.domains.finance.monitoring import watch_spec

        return watch_spec()

    def render_page(self, viewer: Principal) -> None:
        from verticals.domains.finance.page import render

        render(self, viewer)
