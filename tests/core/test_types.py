"""mypy over core, configured in pyproject.toml (``[tool.mypy]``): a type error, or a
``type: ignore`` that no longer silences anything, fails the suite.

About 25 s on two cores from a cold cache, about 1 s warm (the cache is ``.mypy_cache``).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# core/ is verticals.core only through setuptools' package-dir; mypy reads it through this link.
LINK = ROOT / "build" / "mypy" / "verticals" / "core"


def _link_core() -> None:
    target = ROOT / "core"
    if LINK.is_symlink() and LINK.resolve() == target.resolve():
        return
    LINK.parent.mkdir(parents=True, exist_ok=True)
    if LINK.is_symlink():
        LINK.unlink()
    LINK.symlink_to(Path("..", "..", "..", "core"), target_is_directory=True)


def test_core_type_checks():
    _link_core()
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "-p"]
        + ["verticals.core"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    checked = re.search(r"no issues found in (\d+) source files", report)
    assert checked and int(checked.group(1)) >= 50, report  # all of core, not an empty match


def test_a_stale_type_ignore_fails_the_check():
    """The configuration, not only today's code: an ignore that silences nothing is an error."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            "/dev/null",
            "-c",
            "n: int = 1  # type: ignore[assignment]\nm: int = 'x'  # type: ignore\n",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 1, report
    assert "[unused-ignore]" in report and "[ignore-without-code]" in report, report
