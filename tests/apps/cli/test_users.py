"""`verticals users`: create prints the password alone, list never shows it, disable and
reset-password take effect at sign-in."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner
from verticals.apps.cli.main import build_cli
from verticals.core.errors import Forbidden, InvalidInput, Unauthenticated

runner = CliRunner()


def _run(*args: str) -> str:
    result = runner.invoke(build_cli(), list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def _last_line(output: str) -> str:
    line = output.strip().splitlines()[-1]
    assert " " not in line and len(line) >= 20
    return line


def test_create_list_disable_and_reset_password(db):
    from verticals.core.accounts.sessions import sign_in

    out = _run("users", "create", "--name", "nurse.joy", "--role", "clinician", "--tenant", "st-mary")
    password = _last_line(out)
    principal = sign_in("nurse.joy", password).principal
    assert (principal.role, principal.tenant) == ("clinician", "st-mary")
    assert principal.scopes == ["medical:read", "medical:write"]

    listing = _run("users", "list")
    assert "nurse.joy" in listing and "clinician" in listing and password not in listing

    new_password = _last_line(_run("users", "reset-password", "nurse.joy"))
    assert new_password != password
    with pytest.raises(Unauthenticated):
        sign_in("nurse.joy", password)
    _run("users", "disable", "nurse.joy")
    with pytest.raises(Forbidden, match="disabled"):
        sign_in("nurse.joy", new_password)
    _run("users", "enable", "nurse.joy")
    assert sign_in("nurse.joy", new_password).principal.name == "nurse.joy"


def test_create_refuses_unknown_roles_and_taken_names(db):
    from verticals.core.accounts.users import create_user
    from verticals.core.db import session_scope
    from verticals.core.errors import Conflict

    result = runner.invoke(build_cli(), ["users", "create", "--name", "x", "--role", "wizard"])
    assert result.exit_code != 0
    _run("users", "create", "--name", "sam", "--role", "viewer")
    with pytest.raises(Conflict), session_scope() as session:
        create_user(session, "sam", "viewer")
    with pytest.raises(InvalidInput), session_scope() as session:
        create_user(session, "bad name with spaces", "viewer")
