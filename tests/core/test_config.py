from __future__ import annotations

from pathlib import Path

from verticals.core.config import get_settings, reset_settings


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VERTICALS_HOME", str(tmp_path / "h"))
    monkeypatch.delenv("VERTICALS_DATABASE_URL", raising=False)
    reset_settings()
    settings = get_settings()
    assert settings.home == tmp_path / "h"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'h' / 'verticals.db'}"
    assert not (tmp_path / "h").exists(), "nothing is created until a command asks for it"
    monkeypatch.setenv("VERTICALS_DATABASE_URL", "postgresql+psycopg://x@y/z")
    reset_settings()
    assert get_settings().resolved_database_url == "postgresql+psycopg://x@y/z"
    reset_settings()


def test_default_home_is_in_the_user_folder(monkeypatch):
    monkeypatch.delenv("VERTICALS_HOME", raising=False)
    reset_settings()
    assert get_settings().home == Path.home() / ".verticals"
    reset_settings()
