"""The manufacturing domain as verticals sees it (the entry point): wires the parts, nothing else."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verticals.core.plugins import DemoRequest, Domain, DomainStatus
from verticals.domains.manufacturing import NAME
from verticals.domains.manufacturing.model import shipping
from verticals.domains.manufacturing.service import ManufacturingService

if TYPE_CHECKING:
    from fastapi import APIRouter
    from verticals.core.auth import Principal
    from verticals.core.monitoring.spec import WatchSpec
    from verticals.domains.manufacturing.retraining import FailureRetrainRecipe


class ManufacturingDomain(Domain):
    name = NAME
    title = "Manufacturing"
    description = (
        "Predictive maintenance: remaining useful life of turbofans with calibrated intervals, "
        "failure risk of machine tools with likely failure modes."
    )

    def __init__(self) -> None:
        self.service = ManufacturingService()

    def router(self) -> APIRouter:
        from verticals.domains.manufacturing.api import build_router

        return build_router(self.service)

    def render_page(self, viewer: Principal) -> None:
        from verticals.domains.manufacturing.page import render_page

        render_page(self.service, viewer, self.title)

    def ensure_production_model(self) -> str:
        versions = shipping.ensure_shipped()
        return ", ".join(f"{name} {version}" for name, version in versions.items())

    def setup(self) -> None:
        self.service.load()

    def close(self) -> None:
        self.service.close()

    def status(self) -> DomainStatus:
        versions = self.service.model_versions
        missing = [name for name in shipping.MODELS if name not in versions]
        return DomainStatus(
            ready=not missing,
            model_version=", ".join(f"{n} {v}" for n, v in versions.items()) or None,
            detail=f"not loaded: {', '.join(missing)}" if missing else "",
        )

    def monitoring(self) -> WatchSpec:
        """The production RUL model's own sensors and its output (the model is loaded here if
        it is not yet, as by `verticals monitor`: a profile built without it would lack the
        output for good); FD001's informative sensors when there is no production version."""
        from verticals.core.errors import ModelUnavailable
        from verticals.domains.manufacturing.monitoring import watch_spec

        try:
            model = self.service.rul_model()[0]
        except ModelUnavailable:
            return watch_spec()
        return watch_spec(model.used_sensors, model)

    def retraining(self) -> FailureRetrainRecipe:
        """The failure model, from AI4I data plus maintenance outcomes (core labels)."""
        from verticals.domains.manufacturing.retraining import FailureRetrainRecipe

        return FailureRetrainRecipe.from_settings()

    def evaluate(self, data_file: Path, **options: Any) -> dict[str, float]:
        """``task="rul"`` with ``truth`` (the RUL file), or ``task="failure"`` with ``cv``."""
        if options.get("task", "rul") == "failure":
            return self.service.evaluate_failure(Path(data_file), int(options.get("cv", 5)))
        truth = options.get("truth")
        if truth is None:
            raise ValueError("evaluating the RUL model needs the truth file (RUL_FD00x.txt)")
        return self.service.evaluate_rul(Path(data_file), Path(truth))

    def commands(self) -> Mapping[str, Callable[..., Any]]:
        from verticals.domains.manufacturing.cli import commands

        return commands(self.service)

    def migrations_dir(self) -> Path:
        return Path(__file__).parent / "migrations"

    def demo_data(self) -> Path:
        from verticals.shared_models.manufacturing import DEMO_ENGINES

        return DEMO_ENGINES

    def demo_requests(self) -> list[DemoRequest]:
        """A handful of FD001 test engines and AI4I machines, through the API (idempotent)."""
        from verticals.shared_models.manufacturing import DEMO_ENGINES, demo_machine_requests

        return [
            DemoRequest(
                path="/readings:upload",
                files={"file": (DEMO_ENGINES.name, DEMO_ENGINES.read_bytes(), "text/plain")},
            ),
            *(DemoRequest(path=path, json=body) for path, body in demo_machine_requests()),
        ]
