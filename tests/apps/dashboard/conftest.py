"""The whole dashboard app under Streamlit's AppTest, on the test database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import verticals.apps.dashboard as dashboard_package
from streamlit.testing.v1 import AppTest

APP = Path(dashboard_package.__file__).parent / "app.py"


@pytest.fixture
def app(db):
    from verticals.apps.dashboard.state import plugin_registry, prepared

    plugin_registry.clear()
    prepared.clear()
    yield AppTest.from_file(str(APP), default_timeout=120)
    plugin_registry.clear()
    prepared.clear()


@pytest.fixture
def pages() -> Callable[[AppTest], dict[str, str]]:
    """url path -> page hash of the last run (AppTest.switch_page only knows file pages)."""

    def registered(app: AppTest) -> dict[str, str]:
        return {info.get("url_pathname"): h for h, info in app._registered_pages.items()}

    return registered
