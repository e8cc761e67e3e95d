"""The ``verticals`` command. Thin: every verb delegates to core or to a domain plugin."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from verticals.apps.cli.new_domain import new_domain_command
from verticals.apps.cli.run import dashboard_command, demo_command, serve_command
from verticals.apps.cli.users import users_app
from verticals.core.plugins import COMMAND_VERBS, PluginRegistry, discover

if TYPE_CHECKING:
    from verticals.core.auth import ApiKeyInfo

console = Console()

VERB_HELP = {
    "train": "Train a domain's model, register it and promote it when better.",
    "evaluate": "Evaluate a domain's production model on a data file (metrics as JSON).",
    "score": "Score a data file with a domain's production model.",
    "bench": "Benchmarks: per domain, and `serving` for the core runtime.",
    "backtest": "Rolling backtest of a domain's training recipe over time folds.",
    "ingest": "Ingest a domain's live data, e.g. sensor readings from an MQTT broker.",
}


def _db_app(plugins: PluginRegistry) -> typer.Typer:
    app = typer.Typer(help="Database migrations (core and every domain's own branch).")

    @app.command("upgrade")
    def upgrade_cmd() -> None:
        """Apply every pending migration."""
        from verticals.core.bootstrap import prepare_database

        prepare_database(plugins)
        console.print("database is up to date")

    @app.command("downgrade")
    def downgrade_cmd(
        target: Annotated[str, typer.Argument(help="revision, or 'base' to drop everything")],
    ) -> None:
        """Revert migrations down to TARGET."""
        from verticals.core.db.migrate import downgrade

        downgrade(plugins.migration_dirs(), target=target)
        console.print(f"database downgraded to {target}")

    return app


def _key_line(info: ApiKeyInfo) -> str:
    expiry = f", expires {info.expires_at:%Y-%m-%d %H:%M} UTC" if info.expires_at else ""
    return (
        f"key id {info.id} for {info.name!r} of tenant {info.tenant!r}, "
        f"scopes {info.scopes}{expiry}"
    )


def _tenants_app() -> typer.Typer:
    app = typer.Typer(help="Tenants: the organisations keys and domain rows belong to.")

    @app.command("create")
    def create(name: Annotated[str, typer.Argument(help="e.g. 'bank-a'")]) -> None:
        """Create a tenant."""
        from verticals.core.auth import create_tenant
        from verticals.core.db import session_scope

        with session_scope() as session:
            info = create_tenant(session, name)
        console.print(f"tenant {info.name!r} created")

    @app.command("list")
    def list_cmd() -> None:
        """List tenants."""
        from verticals.core.auth import list_tenants
        from verticals.core.db import session_scope

        with session_scope() as session:
            tenants = list_tenants(session)
        table = Table("id", "name", "created")
        for t in tenants:
            table.add_row(str(t.id), t.name, f"{t.created_at:%Y-%m-%d %H:%M}")
        console.print(table)

    return app


def _keys_app() -> typer.Typer:
    app = typer.Typer(help="API keys: created once, shown once, stored hashed.")

    @app.command("create")
    def create(
        name: Annotated[str, typer.Option("--name", help="who the key is for")],
        scopes: Annotated[
            str, typer.Option("--scopes", help="comma-separated, e.g. 'finance:score,medical:*'")
        ],
        tenant: Annotated[
            str | None, typer.Option("--tenant", help="the key's tenant (default: 'default')")
        ] = None,
        expires_in_days: Annotated[
            float | None, typer.Option("--expires-in-days", help="refused after this many days")
        ] = None,
    ) -> None:
        """Create a key; its secret is printed alone on the last line, once."""
        from verticals.core.auth import DEFAULT_TENANT, create_key, expiry_in_days
        from verticals.core.db import session_scope

        with session_scope() as session:
            created = create_key(
                session,
                name,
                scopes.split(","),
                tenant=tenant or DEFAULT_TENANT,
                expires_at=expiry_in_days(expires_in_days),
            )
        console.print(_key_line(created.info))
        print(created.key)

    @app.command("list")
    def list_cmd(
        tenant: Annotated[str | None, typer.Option("--tenant", help="only this tenant")] = None,
    ) -> None:
        """List keys (never their secrets)."""
        from verticals.core.auth import list_keys
        from verticals.core.db import session_scope

        with session_scope() as session:
            keys = list_keys(session, tenant=tenant)
        table = Table("id", "name", "tenant", "prefix", "scopes", "created", "expires", "revoked")
        for k in keys:
            table.add_row(
                str(k.id),
                k.name,
                k.tenant,
                k.prefix,
                ",".join(k.scopes),
                f"{k.created_at:%Y-%m-%d %H:%M}",
                f"{k.expires_at:%Y-%m-%d %H:%M}" if k.expires_at else "",
                f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
            )
        console.print(table)

    @app.command("rotate")
    def rotate(
        key_id: Annotated[int, typer.Argument(help="the key's id")],
        grace_minutes: Annotated[
            float, typer.Option("--grace-minutes", help="how long the old key keeps working")
        ] = 60.0,
    ) -> None:
        """A new key with the same name, scopes and tenant (printed alone on the last line);
        the old one expires after the grace period."""
        from datetime import timedelta

        from verticals.core.auth import rotate_key
        from verticals.core.db import session_scope

        with session_scope() as session:
            created = rotate_key(session, key_id, grace=timedelta(minutes=grace_minutes))
        console.print(f"key {key_id} expires in {grace_minutes:g} minutes; its successor:")
        console.print(_key_line(created.info))
        print(created.key)

    @app.command("revoke")
    def revoke(key_id: Annotated[int, typer.Argument(help="the key's id")]) -> None:
        """Revoke a key; it is refused from then on."""
        from verticals.core.auth import revoke_key
        from verticals.core.db import session_scope

        with session_scope() as session:
            info = revoke_key(session, key_id)
        console.print(f"revoked key {info.id} ({info.name})")

    return app


def _models_app() -> typer.Typer:
    app = typer.Typer(help="The model registry.")

    @app.command("list")
    def list_cmd(
        domain: Annotated[str | None, typer.Option("--domain")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """List registered model versions."""
        from verticals.core.db import session_scope
        from verticals.core.registry import list_versions

        with session_scope() as session:
            versions = list_versions(session, domain=domain)
        if as_json:
            print(json.dumps([v.model_dump(mode="json") for v in versions]))
            return
        table = Table("model", "version", "stage", "metrics", "sha256")
        for v in versions:
            metrics = ", ".join(f"{k}={val:.4g}" for k, val in sorted(v.metrics.items()))
            table.add_row(f"{v.domain}/{v.name}", v.version, v.stage, metrics, v.sha256[:12])
        console.print(table)

    @app.command("promote")
    def promote_cmd(
        model: Annotated[str, typer.Argument(help="<domain>/<name>")],
        version: Annotated[str, typer.Argument()],
        stage: Annotated[str, typer.Option("--stage")] = "production",
    ) -> None:
        """Move a model version to a stage (production archives the previous one)."""
        from verticals.core.accounts.users import OPERATOR
        from verticals.core.audit import record_action
        from verticals.core.db import session_scope
        from verticals.core.errors import InvalidInput
        from verticals.core.registry import promote

        domain, _, name = model.partition("/")
        if not name:
            raise InvalidInput("model must be written <domain>/<name>")
        with session_scope() as session:
            promoted = promote(session, domain=domain, name=name, version=version, stage=stage)  # type: ignore[arg-type]
            record_action(
                session,
                OPERATOR,
                domain=domain,
                action="model.promote",
                target=f"{name}:{version}",
                detail={"stage": stage},
            )
        console.print(f"{promoted.ref} is now {promoted.stage}")

    @app.command("verify")
    def verify_cmd(
        domain: Annotated[str | None, typer.Option("--domain")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Check the sha256 of every registered artifact and derived artifact (ONNX exports,
        variants, profiles). Exit status 1 when any is missing or differs."""
        from verticals.core.db import session_scope
        from verticals.core.registry import verify_registry

        with session_scope() as session:
            checks = verify_registry(session, domain=domain)
        failed = [c for c in checks if not c.ok]
        if as_json:
            print(json.dumps([c.model_dump(mode="json") for c in checks]))
        else:
            table = Table("model", "kind", "status", "path")
            for c in checks:
                status = "ok" if c.ok else f"[red]{c.status}[/red]"
                table.add_row(c.model, c.kind, status, c.path)
            console.print(table)
            console.print(f"{len(checks) - len(failed)} ok, {len(failed)} failing")
        if failed:
            raise typer.Exit(1)

    @app.command("forget-derived")
    def forget_derived_cmd(
        model: Annotated[str, typer.Argument(help="<domain>/<name>")],
        version: Annotated[str, typer.Argument()],
        kind: Annotated[str, typer.Argument(help="e.g. onnx")],
        delete_file: Annotated[bool, typer.Option("--delete-file")] = False,
    ) -> None:
        """Drop a derived artifact's registration (after `models verify` showed it failing); its
        producer makes and registers it afresh from the verified model version on next use."""
        from pathlib import Path

        from verticals.core.db import session_scope
        from verticals.core.errors import InvalidInput, NotFound
        from verticals.core.registry import forget_derived, get_version

        domain, _, name = model.partition("/")
        if not name:
            raise InvalidInput("model must be written <domain>/<name>")
        with session_scope() as session:
            removed = forget_derived(session, get_version(session, domain, name, version), kind)
        if removed is None:
            raise NotFound(f"{model}:{version} has no registered {kind!r} artifact")
        if delete_file:
            Path(removed.path).unlink(missing_ok=True)
        console.print(f"forgot {removed.what} ({removed.path})")

    return app


def _extra_core_commands(verb: str) -> dict:
    """Core commands that live beside the domains' ones (e.g. ``bench serving``)."""
    if verb == "bench":
        from verticals.core.serving.bench import bench_serving_command

        return {"serving": bench_serving_command}
    return {}


def build_cli(plugins: PluginRegistry | None = None) -> typer.Typer:
    plugins = plugins if plugins is not None else discover()
    app = typer.Typer(
        name="verticals",
        help="verticals: medical imaging, card fraud and more, on one ML core.",
        no_args_is_help=True,
        pretty_exceptions_show_locals=False,
    )
    app.command("serve")(serve_command)
    app.command("demo")(demo_command)
    app.command("dashboard")(dashboard_command)
    app.command("new-domain")(new_domain_command)
    app.add_typer(_db_app(plugins), name="db")
    app.add_typer(_tenants_app(), name="tenants")
    app.add_typer(_keys_app(), name="keys")
    app.add_typer(_models_app(), name="models")
    app.add_typer(users_app(), name="users")

    @app.command("domains")
    def domains_cmd() -> None:
        """List the installed domains, and the plugins that failed to load."""
        for name, domain in plugins.domains.items():
            console.print(f"{name}: {domain.title}")
        for name, error in plugins.failures.items():
            console.print(f"[red]{name}: failed to load: {error}[/red]")

    from verticals.core.compression.commands import compress_command

    app.command("compress")(compress_command)

    from verticals.core.monitoring.cli import monitor_command

    app.command("monitor")(monitor_command)

    from verticals.core.labeling.retrain_cli import retrain_command

    app.command("retrain")(retrain_command)

    from verticals.core.labeling.cli import label_app

    app.add_typer(label_app(), name="label")

    for verb in COMMAND_VERBS:
        group = typer.Typer(help=VERB_HELP[verb], no_args_is_help=True)
        for name, command in _extra_core_commands(verb).items():
            group.command(name)(command)
        for name, domain in plugins.domains.items():
            command = domain.commands().get(verb)
            if command is not None:
                group.command(name, help=(command.__doc__ or f"{verb} {name}"))(command)
        app.add_typer(group, name=verb)
    return app


def main() -> None:
    from verticals.core.errors import VerticalsError

    cli = build_cli()
    try:
        cli(standalone_mode=True)
    except VerticalsError as exc:
        console.print(f"[red]error ({exc.code}):[/red] {exc.message}")
        if exc.details:
            console.print(exc.details)
        raise SystemExit(2) from None
