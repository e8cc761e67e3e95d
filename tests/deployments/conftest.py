"""Tools shared by the checks of deployments/ (all offline)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest


def _dev_tool(name: str) -> str:
    """A console script of the dev extra: next to this interpreter first, then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: it comes with the dev extra (make install)")
    return found


@pytest.fixture
def dev_tool() -> Callable[[str], str]:
    return _dev_tool
