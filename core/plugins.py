"""The domain contract and its discovery through the ``verticals.domains`` entry-point group.

Built-in domains register exactly as third-party packages do, in their pyproject.toml::

    [project.entry-points."verticals.domains"]
    mydomain = "my_package.plugin:MyDomain"

The entry point names a class (or a zero-argument factory) returning a :class:`Domain`.

A package that exists only to test the plugin machinery (``tests/plugins/verticals-echo``)
registers under ``verticals.test_domains`` instead: :func:`discover` loads that group only when
``VERTICALS_LOAD_TEST_PLUGINS=1`` (the test suite sets it), so an installed test plugin never
reaches the demo, ``verticals serve`` or the dashboard by accident.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from fastapi import APIRouter
    from verticals.core.auth import Principal
    from verticals.core.compression.target import CompressionTarget
    from verticals.core.labeling.retrain import RetrainRecipe
    from verticals.core.labeling.shadow import ShadowSource
    from verticals.core.labeling.simulate import Learner
    from verticals.core.monitoring.spec import WatchSpec

ENTRY_POINT_GROUP = "verticals.domains"
TEST_ENTRY_POINT_GROUP = "verticals.test_domains"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
COMMAND_VERBS = ("train", "evaluate", "score", "bench", "backtest", "ingest")

log = logging.getLogger(__name__)


class DomainStatus(BaseModel):
    """What /readyz and the dashboard show for a domain."""

    ready: bool
    model_version: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class DemoRequest:
    """One request ``verticals demo`` sends through the running API (with the demo key), so a
    new user's dashboard opens on data. Make it idempotent: the demo may start many times."""

    path: str  # below the domain's mount, e.g. "/transactions:batch"
    method: str = "POST"
    json: Any = None
    files: Mapping[str, tuple[str, bytes, str]] | None = None
    data: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


class Domain(ABC):
    """One vertical. Keep construction cheap: load models in :meth:`setup`, not in ``__init__``.

    ``commands()`` maps CLI verbs (``train``, ``evaluate``, ``score``, ``bench``) to plain
    functions annotated for Typer; the CLI mounts each as ``verticals <verb> <name>``.
    """

    name: str
    title: str
    description: str = ""

    @abstractmethod
    def router(self) -> APIRouter:
        """The FastAPI router mounted at ``/v1/<name>``."""

    @abstractmethod
    def render_page(self, viewer: Principal) -> None:
        """Draw the domain's Streamlit page for the signed-in ``viewer`` (called on every rerun:
        cache heavy work). The dashboard shows it only when ``viewer.allows_domain(name)``; gate
        each action on its scope (``viewer.allows("<name>:<action>")``) and pass ``viewer`` to
        the service so the action is logged under that user."""

    @abstractmethod
    def evaluate(self, data_file: Path, **options: Any) -> dict[str, float]:
        """Metrics of the production model on ``data_file`` (the domain's own format)."""

    @abstractmethod
    def ensure_production_model(self) -> str:
        """Make sure a production model is registered (registering the shipped baseline if
        none is); return its version. Never downloads and never needs ``../shared``."""

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Load what serving needs (models, sessions). Called once at API start."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what :meth:`setup` acquired (batchers, sessions). Called once at API stop;
        an exception is logged and does not stop the other domains from closing."""

    def status(self) -> DomainStatus:
        return DomainStatus(ready=True)

    def commands(self) -> Mapping[str, Callable[..., Any]]:
        return {}

    def migrations_dir(self) -> Path | None:
        """An Alembic version folder holding this domain's own branch, if it has tables."""
        return None

    def demo_data(self) -> Path | None:
        """A small shipped sample the demo and dashboard can use."""
        return None

    def demo_requests(self) -> list[DemoRequest]:
        """Sample traffic for ``verticals demo`` (default: none)."""
        return []

    def compression_target(
        self, model_name: str, data_file: Path | None, split: str
    ) -> CompressionTarget | None:
        """What ``verticals compress <domain>/<model>`` needs; None when not compressible.
        Called with the database migrated."""
        return None

    def monitoring(self) -> WatchSpec | None:
        """What core's monitoring watches for this domain (models, features, outputs, where
        the reference and the current window come from); None: nothing. See docs/monitoring.md."""
        return None

    def retraining(self) -> RetrainRecipe | None:
        """How ``verticals retrain <name>`` retrains this domain's models (data plus accepted
        labels, the recipe, the metric); None: not retrainable. See docs/labeling.md."""
        return None

    def shadow(self) -> ShadowSource | None:
        """The live traffic a staged challenger scores in shadow (recorded, never returned) and
        how it scores it; None: no shadow evaluation. See docs/labeling.md."""
        return None

    def labeling_learner(
        self, task: str | None, data: Path | None, eval_data: Path | None
    ) -> Learner | None:
        """The pool, model and evaluation data ``verticals label simulate <name>`` runs active
        learning on (core/labeling/simulate.py); None: the domain offers none. ``task`` picks one
        of the domain's models, ``data`` the pool's file, ``eval_data`` the evaluation file
        (None: the domain's defaults)."""
        return None


@dataclass
class PluginRegistry:
    domains: dict[str, Domain] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)

    def migration_dirs(self) -> list[Path]:
        dirs = [d.migrations_dir() for d in self.domains.values()]
        return [d for d in dirs if d is not None]

    def get(self, name: str) -> Domain:
        from verticals.core.errors import NotFound

        try:
            return self.domains[name]
        except KeyError:
            raise NotFound(f"unknown domain {name!r}", {"known": sorted(self.domains)}) from None


def _validate(domain: object, entry_name: str) -> Domain:
    if not isinstance(domain, Domain):
        raise TypeError(f"entry point {entry_name!r} did not produce a verticals Domain")
    if not NAME_PATTERN.match(getattr(domain, "name", "") or ""):
        raise ValueError(f"domain name {getattr(domain, 'name', None)!r} is not a valid URL prefix")
    unknown = set(domain.commands()) - set(COMMAND_VERBS)
    if unknown:
        raise ValueError(f"unknown command verbs {sorted(unknown)}; allowed: {COMMAND_VERBS}")
    return domain


def _entries(group: str, include_test_plugins: bool | None) -> list[Any]:
    if include_test_plugins is None:
        from verticals.core.config import get_settings

        include_test_plugins = get_settings().load_test_plugins
    entries = list(entry_points(group=group))
    if include_test_plugins and group == ENTRY_POINT_GROUP:
        entries += list(entry_points(group=TEST_ENTRY_POINT_GROUP))
    return sorted(entries, key=lambda e: e.name)


def discover(
    group: str = ENTRY_POINT_GROUP, *, include_test_plugins: bool | None = None
) -> PluginRegistry:
    """Load every registered domain. A plugin that fails is reported; the others still load.

    Test plugins (:data:`TEST_ENTRY_POINT_GROUP`) join when ``include_test_plugins`` is true,
    by default when the setting ``VERTICALS_LOAD_TEST_PLUGINS`` is."""
    registry = PluginRegistry()
    for entry in _entries(group, include_test_plugins):
        try:
            factory = entry.load()
            domain = _validate(factory(), entry.name)
            if domain.name in registry.domains:
                raise ValueError(f"domain name {domain.name!r} registered twice")
            registry.domains[domain.name] = domain
        except Exception as exc:  # a broken plugin must not take the others down
            registry.failures[entry.name] = f"{type(exc).__name__}: {exc}"
            log.error(
                "domain plugin %r failed to load: %s", entry.name, registry.failures[entry.name]
            )
            log.debug("traceback of the failed plugin %r", entry.name, exc_info=True)
    return registry
