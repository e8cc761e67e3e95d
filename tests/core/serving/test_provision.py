"""A scratch home for a benchmark's server: migrated, model registered, key valid; env restored."""

from __future__ import annotations

import os

from sqlalchemy import create_engine, text
from verticals.core.serving.provision import provision_scratch


def test_provision_scratch_prepares_a_home_and_restores_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VERTICALS_HOME", str(tmp_path / "mine"))
    monkeypatch.delenv("VERTICALS_DATABASE_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'scratch.db'}"
    key = provision_scratch(tmp_path / "scratch", url, "finance", ["finance:score"])
    assert key.startswith("vk_")
    assert os.environ["VERTICALS_HOME"] == str(tmp_path / "mine")
    assert "VERTICALS_DATABASE_URL" not in os.environ
    engine = create_engine(url)
    with engine.connect() as conn:
        stages = conn.execute(
            text("SELECT stage FROM model_versions WHERE domain = 'finance'")
        ).scalars().all()
        scopes = conn.execute(text("SELECT scopes FROM api_keys")).scalars().all()
    engine.dispose()
    assert stages == ["production"] and "finance:score" in str(scopes)


def test_launched_server_reports_a_server_that_cannot_start(tmp_path):
    import pytest
    from verticals.core.serving.provision import launched_server

    with pytest.raises(RuntimeError, match="exited with"):
        with launched_server("verticals.no_such_module:app", dict(os.environ), 1,
                             ready=lambda url: False,
                             timeout_s=60):
            pass
