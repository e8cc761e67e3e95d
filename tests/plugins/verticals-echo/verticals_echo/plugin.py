"""The echo domain as verticals sees it (the entry point): wires the parts, nothing else."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verticals.core.plugins import Domain, DomainStatus

from verticals_echo import NAME
from verticals_echo.model import shipping
from verticals_echo.model.data import SAMPLE
from verticals_echo.service import EchoService

if TYPE_CHECKING:
    from fastapi import APIRouter
    from verticals.core.auth import Principal


class EchoDomain(Domain):
    name = NAME
    title = "Echo (test plugin)"
    description = "Scores three numbers with a linear model, and keeps notes."

    def __init__(self) -> None:
        self.service = EchoService()

    def router(self) -> APIRouter:
        from verticals_echo.api import build_router

        return build_router(self.service)

    def render_page(self, viewer: Principal) -> None:
        from verticals_echo.page import render_page

        render_page(self.service, viewer, self.title)

    def ensure_production_model(self) -> str:
        return shipping.ensure_shipped()

    def setup(self) -> None:
        self.service.load()

    def status(self) -> DomainStatus:
        version = self.service.model_version
        return DomainStatus(ready=version is not None, model_version=version)

    def evaluate(self, data_file: Path, **options: Any) -> dict[str, float]:
        return self.service.evaluate(data_file)

    def commands(self) -> Mapping[str, Callable[..., Any]]:
        from verticals_echo.cli import commands

        return commands(self.service)

    def migrations_dir(self) -> Path:
        return Path(__file__).parent / "migrations"

    def demo_data(self) -> Path:
        return SAMPLE
