"""`verticals tenants ...` and the tenant, expiry and rotation options of `verticals keys`."""

from __future__ import annotations

from typer.testing import CliRunner
from verticals.apps.cli.main import build_cli

runner = CliRunner()


def _run(*args: str, code: int = 0):  # noqa: ANN202 - a click Result
    result = runner.invoke(build_cli(), list(args))
    assert result.exit_code == code, result.output
    return result


def _last_line(result) -> str:  # noqa: ANN001
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("vk_") and " " not in key
    return key


def test_tenants_create_and_list(db):
    _run("tenants", "create", "bank-a")
    listing = _run("tenants", "list").stdout
    assert "bank-a" in listing and "default" in listing


def test_keys_create_for_a_tenant_with_an_expiry_prints_the_key_alone_last(db):
    from verticals.core.auth import authenticate, list_keys
    from verticals.core.db import session_scope

    _run("tenants", "create", "bank-a")
    out = _run(
        "keys",
        "create",
        "--name",
        "etl",
        "--scopes",
        "finance:score",
        "--tenant",
        "bank-a",
        "--expires-in-days",
        "30",
    )
    key = _last_line(out)
    default = _last_line(_run("keys", "create", "--name", "d", "--scopes", "finance:score"))
    with session_scope() as session:
        assert authenticate(session, key).tenant == "bank-a"
        assert authenticate(session, default).tenant == "default"
        etl = list_keys(session)[0]
        assert etl.expires_at is not None and etl.tenant == "bank-a"
    assert "bank-a" in _run("keys", "list", "--tenant", "bank-a").stdout


def test_keys_create_for_an_unknown_tenant_fails(db):
    result = runner.invoke(
        build_cli(), ["keys", "create", "--name", "x", "--scopes", "*", "--tenant", "nope"]
    )
    assert result.exit_code != 0


def test_keys_rotate_prints_the_successor_alone_last(db):
    from verticals.core.auth import authenticate, clear_key_cache
    from verticals.core.db import session_scope
    from verticals.core.errors import Unauthenticated

    _run("tenants", "create", "bank-a")
    old = _last_line(
        _run("keys", "create", "--name", "etl", "--scopes", "finance:*", "--tenant", "bank-a")
    )
    new = _last_line(_run("keys", "rotate", "1", "--grace-minutes", "0"))
    clear_key_cache()
    with session_scope() as session:
        principal = authenticate(session, new)
        assert (principal.name, principal.scopes, principal.tenant) == (
            "etl",
            ["finance:*"],
            "bank-a",
        )
        try:
            authenticate(session, old)
        except Unauthenticated as exc:
            assert "expired" in exc.message
        else:
            raise AssertionError("the rotated key still works after its grace period")
