"""``verticals users``: dashboard accounts. Passwords are generated, printed once, stored hashed."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from verticals.core.accounts.roles import ROLE_SCOPES

console = Console()
ROLE_HELP = ", ".join(ROLE_SCOPES)


def _when(moment: object) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else ""


def users_app() -> typer.Typer:
    app = typer.Typer(help="Dashboard users: local accounts with roles, for sign-in.")

    @app.command("create")
    def create(
        name: Annotated[str, typer.Option("--name", help="the user's sign-in name")],
        role: Annotated[str, typer.Option("--role", help=ROLE_HELP)],
        tenant: Annotated[str, typer.Option("--tenant")] = "default",
    ) -> None:
        """Create a user; the generated password is printed alone on the last line, once."""
        from verticals.core.accounts.users import create_user
        from verticals.core.db import session_scope

        with session_scope() as session:
            created = create_user(session, name, role, tenant=tenant)
        info = created.info
        console.print(f"user {info.id} {info.name!r}, role {info.role}, tenant {info.tenant}")
        print(created.password)

    @app.command("list")
    def list_cmd() -> None:
        """List users, their role, tenant, state and last sign-in (never a password)."""
        from verticals.core.accounts.users import list_users
        from verticals.core.db import session_scope

        with session_scope() as session:
            users = list_users(session)
        table = Table("id", "name", "role", "tenant", "source", "state", "last sign-in")
        for u in users:
            state = "disabled" if u.disabled_at else ("locked" if u.locked_until else "active")
            table.add_row(
                str(u.id), u.name, u.role, u.tenant, u.source, state, _when(u.last_sign_in_at)
            )
        console.print(table)

    @app.command("disable")
    def disable(name: Annotated[str, typer.Argument(help="the user's name")]) -> None:
        """Disable a user: refused at sign-in, open sessions end at their next click."""
        from verticals.core.accounts.users import disable_user
        from verticals.core.db import session_scope

        with session_scope() as session:
            disable_user(session, name)
        console.print(f"disabled {name!r}")

    @app.command("enable")
    def enable(name: Annotated[str, typer.Argument(help="the user's name")]) -> None:
        """Enable a user again (also lifts a lockout)."""
        from verticals.core.accounts.users import enable_user
        from verticals.core.db import session_scope

        with session_scope() as session:
            enable_user(session, name)
        console.print(f"enabled {name!r}")

    @app.command("reset-password")
    def reset(name: Annotated[str, typer.Argument(help="the user's name")]) -> None:
        """Generate a new password (printed alone on the last line); ends open sessions."""
        from verticals.core.accounts.users import reset_password
        from verticals.core.db import session_scope

        with session_scope() as session:
            password = reset_password(session, name)
        console.print(f"new password for {name!r}:")
        print(password)

    return app
