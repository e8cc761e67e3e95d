"""`verticals new-domain`: the generated package installs, is discovered, and passes its tests;
the test suite's plugin is that output with its listed edits."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from typer.testing import CliRunner
from verticals.apps.cli.main import build_cli
from verticals.apps.cli.new_domain import Names, new_domain
from verticals.core.errors import Conflict, InvalidInput
from verticals.core.plugins import PluginRegistry, discover

TEST_PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "verticals-echo"
# What the copy in tests/plugins changes; its README says why.
EDITED = {"pyproject.toml", "README.md", "verticals_echo/api.py"}


def _files(root: Path) -> set[str]:
    def generated(path: Path) -> bool:
        return not any(
            part.endswith(".egg-info") or part in ("__pycache__", ".pytest_cache", ".ruff_cache")
            for part in path.relative_to(root).parts
        )

    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and generated(p)}


def test_names_follow_from_the_domain_name():
    names = Names.of("card_fraud")
    assert (names.Name, names.NAME, names.package, names.distribution, names.title) == (
        "CardFraud",
        "CARD_FRAUD",
        "verticals_card_fraud",
        "verticals-card-fraud",
        "Card fraud",
    )
    for bad in ("Card", "1x", "card-fraud", "a" * 41, ""):
        with pytest.raises(InvalidInput):
            Names.of(bad)


def test_the_layout_is_the_template_and_nothing_is_overwritten(tmp_path):
    result = CliRunner().invoke(
        build_cli(PluginRegistry()), ["new-domain", "plant", "--path", str(tmp_path / "pkg")]
    )
    assert result.exit_code == 0, result.output
    target = tmp_path / "pkg"
    rooms = {p.name for p in (target / "verticals_plant").iterdir()}
    assert {
        "plugin.py",
        "settings.py",
        "schemas.py",
        "tables.py",
        "migrations",
        "service.py",
        "api.py",
        "page.py",
        "cli.py",
        "model",
    } <= rooms
    assert (target / "verticals_plant/migrations/plant_0001.py").is_file()
    assert 'plant = "verticals_plant.plugin:PlantDomain"' in (target / "pyproject.toml").read_text()
    assert "VERTICALS_PLANT_" in (target / "verticals_plant/settings.py").read_text()
    assert not [p for p in target.rglob("*") if "$" in p.name or p.suffix == ".tmpl"]
    with pytest.raises(Conflict):
        new_domain("plant", target)


def test_the_test_plugin_is_the_generators_output_plus_its_listed_edits(tmp_path):
    generated = new_domain("echo", tmp_path, "Echo (test plugin)")
    assert _files(TEST_PLUGIN) == _files(generated)
    for name in sorted(_files(generated) - EDITED):
        assert (TEST_PLUGIN / name).read_bytes() == (generated / name).read_bytes(), name


def _python(cmd: list[str | Path], **kwargs) -> subprocess.CompletedProcess:  # noqa: ANN003
    result = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=240, **kwargs
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_round_trip_install_discover_and_own_tests_pass(tmp_path):
    """Generate, `pip install -e` (no deps) into a throwaway environment layered on this one (so
    concurrent test runs never see the package), list it with `verticals domains`, run its own
    tests, lint it."""
    target = new_domain("roundtrip", tmp_path / "verticals-roundtrip", "Round trip")
    venv = tmp_path / "venv"
    _python([sys.executable, "-m", "venv", "--without-pip", venv])
    child = venv / "bin" / "python"
    child_site = _python(
        [child, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    ).stdout.strip()
    parent_site = sysconfig.get_paths()["purelib"]
    Path(child_site, "_verticals_parent.pth").write_text(
        f"import site; site.addsitedir({parent_site!r})\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VERTICALS_", "PYTEST_"))}
    env["VERTICALS_HOME"] = str(tmp_path / "home")
    _python(
        [child, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "-e", target],
        env=env,
    )  # fmt: skip
    listed = _python(
        [child, "-c", "from verticals.apps.cli.main import main; main()", "domains"], env=env
    ).stdout
    assert "roundtrip: Round trip" in listed and "echo" not in listed
    assert "roundtrip" not in discover().domains  # this environment is untouched
    tests = _python([child, "-m", "pytest", "-q"], cwd=target, env=env)
    assert " passed" in tests.stdout and "failed" not in tests.stdout
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff is not None:
        _python([ruff, "check", target], env=env)
        _python([ruff, "format", "--check", target], env=env)
