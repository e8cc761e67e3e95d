"""The dependency rules of DESIGN.md, as import-linter contracts (pyproject.toml,
``[tool.importlinter]``): the same check ``lint-imports`` runs by hand.

The contracts are checked on the real import graph, and each rule is shown to bite: a forbidden
import is added to a copy of that graph and the contracts must report it.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import grimp
import pytest
from importlinter.application import use_cases
from importlinter.application.app_config import settings
from importlinter.configuration import configure

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_lint_imports_passes():
    """The command developers run; its report is the failure message."""
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(PYPROJECT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def options():
    configure()  # import-linter's default adapters (file system, readers, graph builder)
    use_cases._register_built_in_contract_types()  # what lint_imports() does before a report
    return use_cases.read_user_options(str(PYPROJECT))


@pytest.fixture(scope="module")
def real_graph(options) -> grimp.ImportGraph:
    session = options.session_options
    graph = grimp.build_graph(
        *session["root_packages"],
        include_external_packages=session.get("include_external_packages", False),
        cache_dir=None,
    )
    # The package-dir mapping (core/ -> verticals.core, ...) resolves: every part is seen.
    for module in (
        "verticals.core.plugins",
        "verticals.apps.api",
        "verticals.domains.finance.plugin",
        "verticals.domains.medical.plugin",
        "verticals.shared_models",
    ):
        assert module in graph.modules, module
    return graph


class _GraphWith:
    """An import-linter graph builder that returns a copy of ``graph`` plus one import."""

    def __init__(self, graph: grimp.ImportGraph, importer: str, imported: str) -> None:
        self.graph, self.importer, self.imported = graph, importer, imported

    def build(self, *args, **kwargs) -> grimp.ImportGraph:
        graph = copy.deepcopy(self.graph)
        if self.importer:
            graph.add_import(
                importer=self.importer,
                imported=self.imported,
                line_number=1,
                line_contents=f"import {self.imported}  # added by the test",
            )
        return graph


def _broken_contracts(options, graph, importer: str = "", imported: str = "") -> list[str]:
    saved = settings.GRAPH_BUILDER
    settings.configure(GRAPH_BUILDER=_GraphWith(graph, importer, imported))
    try:
        report = use_cases.create_report(options, cache_dir=None)
    finally:
        settings.configure(GRAPH_BUILDER=saved)
    assert not report.could_not_run, report.invalid_contract_options
    return sorted(
        contract.name for contract, check in report.get_contracts_and_checks() if not check.kept
    )


def test_contracts_hold_on_the_real_graph(options, real_graph):
    assert _broken_contracts(options, real_graph) == []


@pytest.mark.parametrize(
    ("importer", "imported", "contract"),
    [
        ("verticals.core.config", "verticals.domains.finance.plugin", "Dependency direction"),
        ("verticals.core.plugins", "verticals.apps.api", "Dependency direction"),
        ("verticals.core.registry", "verticals.shared_models", "Dependency direction"),
        ("verticals.shared_models", "verticals.domains.medical", "Dependency direction"),
        ("verticals.shared_models", "verticals.apps.cli", "Dependency direction"),
        ("verticals.domains.finance.plugin", "verticals.apps.api", "Dependency direction"),
        ("verticals.apps.api", "verticals.domains.finance.plugin", "Apps reach domains"),
        ("verticals.apps.cli", "verticals.shared_models", "Apps reach domains"),
        ("verticals.domains.finance.plugin", "verticals.domains.medical", "A domain never"),
        ("verticals.domains.medical.plugin", "verticals.domains.finance.plugin", "A domain never"),
        ("verticals.core.registry", "pickle", "No pickle"),
        ("verticals.domains.medical.plugin", "joblib", "No pickle"),
    ],
)
def test_a_forbidden_import_is_caught(options, real_graph, importer, imported, contract):
    broken = _broken_contracts(options, real_graph, importer, imported)
    assert any(name.startswith(contract) for name in broken), broken


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("verticals.domains.finance.plugin", "verticals.shared_models"),
        ("verticals.domains.finance.plugin", "verticals.core.plugins"),
        ("verticals.domains.medical.plugin", "verticals.domains.medical.imaging"),
        ("verticals.shared_models", "verticals.core.registry"),
        ("verticals.apps.api", "verticals.core.plugins"),
    ],
)
def test_an_allowed_import_passes(options, real_graph, importer, imported):
    assert _broken_contracts(options, real_graph, importer, imported) == []
