"""The dependency direction of DESIGN.md, checked on every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _violations(folder: str, forbidden: tuple[str, ...], allow_own: str | None = None) -> list[str]:
    found = []
    for path in _modules(folder):
        own = None
        if allow_own is not None:
            parts = path.relative_to(ROOT / folder).parts
            own = f"{allow_own}.{parts[0]}" if len(parts) > 1 else None
        for name in _imports(path):
            for prefix in forbidden:
                if (name == prefix or name.startswith(prefix + ".")) and not (
                    own and (name == own or name.startswith(own + "."))
                ):
                    found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_core_imports_no_domain_app_or_shared_model():
    assert (
        _violations("core", ("verticals.domains", "verticals.apps", "verticals.shared_models"))
        == []
    )


def test_apps_reach_domains_only_through_the_plugin_registry():
    assert _violations("apps", ("verticals.domains", "verticals.shared_models")) == []


def test_shared_models_import_no_domain_or_app():
    assert _violations("shared_models", ("verticals.domains", "verticals.apps")) == []


def test_a_domain_imports_no_other_domain_and_no_app():
    assert (
        _violations(
            "domains", ("verticals.domains", "verticals.apps"), allow_own="verticals.domains"
        )
        == []
    )


@pytest.mark.parametrize("folder", ["core", "apps", "domains", "shared_models"])
def test_no_pickle_in_served_code(folder):
    offenders = [
        str(p.relative_to(ROOT))
        for p in _modules(folder)
        if {"pickle", "joblib", "cloudpickle", "dill"} & {n.split(".")[0] for n in _imports(p)}
    ]
    assert offenders == []
