from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session
from verticals.core.db import session_scope
from verticals.core.monitoring.spec import (
    WatchedFeature,
    WatchedModel,
    WatchSpec,
    Window,
    WindowConfig,
)
from verticals.core.plugins import Domain, PluginRegistry
from verticals.core.registry.store import register


class Feed:
    """A synthetic model's live stream: x (numeric), colour (categorical), emb (embedding)."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(11)
        self.x: list[float] = []
        self.colour: list[str] = []
        self.emb: list[np.ndarray] = []

    def send(self, n: int, shift: float = 0.0, colours: tuple[float, float] = (0.7, 0.3)) -> None:
        self.x += (self.rng.normal(size=n) + shift).tolist()
        self.colour += self.rng.choice(["red", "blue"], size=n, p=list(colours)).tolist()
        self.emb += list(self.rng.normal(size=(n, 3)) + shift)

    def window(self, session: Session, config: WindowConfig) -> Window:
        k = config.max_count
        return Window(
            columns={
                "x": np.array(self.x[-k:]),
                "colour": np.array(self.colour[-k:]),
                "emb": np.array(self.emb[-k:]),
            },
            count=len(self.x[-k:]),
        )


def reference() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {
        "x": rng.normal(size=20_000),
        "colour": rng.choice(["red", "blue"], size=20_000, p=[0.7, 0.3]),
        "emb": rng.normal(size=(5_000, 3)),
    }


class Synthetic(Domain):
    name = "synth"
    title = "Synthetic"

    def __init__(self, feed: Feed) -> None:
        self.feed = feed

    def router(self):  # noqa: ANN201
        from fastapi import APIRouter

        return APIRouter()

    def render_page(self, viewer) -> None:  # noqa: ANN001
        pass

    def evaluate(self, data_file: Path, **options) -> dict[str, float]:  # noqa: ANN003
        return {}

    def ensure_production_model(self) -> str:
        return "1"

    def monitoring(self) -> WatchSpec:
        return WatchSpec(
            models=(
                WatchedModel(
                    model="m",
                    features=(
                        WatchedFeature("x"),
                        WatchedFeature("colour", "categorical"),
                        WatchedFeature("emb", "embedding"),
                    ),
                    current=self.feed.window,
                    reference=reference,
                    window=WindowConfig(max_count=500, max_age_s=None, min_count=100),
                ),
            )
        )


@pytest.fixture
def feed() -> Feed:
    return Feed()


@pytest.fixture
def synth(db, tmp_path: Path, feed: Feed) -> PluginRegistry:
    artifact = tmp_path / "m.bin"
    artifact.write_bytes(b"weights")
    with session_scope() as session:
        register(
            session,
            domain="synth",
            name="m",
            version="1",
            artifact_path=artifact,
            stage="production",
        )
    return PluginRegistry(domains={"synth": Synthetic(feed)})


@pytest.fixture
def registry_of() -> Callable[[Domain], PluginRegistry]:
    return lambda domain: PluginRegistry(domains={domain.name: domain})
