"""Long-running commands: ``serve`` (API), ``dashboard`` (Streamlit) and ``demo`` (both)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import typer
from rich.console import Console
from verticals.core.serving.provision import answers_below_500, stop_processes, wait_until_ready

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
    from verticals.core.plugins import PluginRegistry

console = Console()
DASHBOARD_SCRIPT = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"


def _prepare() -> tuple[PluginRegistry, dict[str, str]]:
    """The installed domains, the database migrated, and each domain's production version."""
    from verticals.core.bootstrap import ensure_production_models, prepare_database
    from verticals.core.plugins import discover

    plugins = discover()
    for name, error in plugins.failures.items():
        console.print(f"[yellow]domain plugin {name!r} failed to load: {error}[/yellow]")
    prepare_database(plugins)
    return plugins, ensure_production_models(plugins)


def _send_demo_traffic(plugins: PluginRegistry, api_url: str, key: str) -> None:
    """Each domain's sample requests, through the API like any client's (recorded, audited)."""
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=api_url, timeout=120.0) as client:
        for name, domain in plugins.domains.items():
            try:
                requests = domain.demo_requests()
            except Exception as exc:  # noqa: BLE001 - a plugin's sample data must not stop the demo
                console.print(f"[yellow]{name}: no demo data ({exc})[/yellow]")
                continue
            failed = 0
            for request in requests:
                response = client.request(
                    request.method,
                    f"/v1/{name}{request.path}",
                    json=request.json,
                    files=request.files,
                    data=request.data,
                    headers={**auth, **request.headers},
                )
                if response.status_code >= 400:
                    failed += 1
                    console.print(
                        f"[yellow]{name}: demo request {request.path} -> "
                        f"{response.status_code} {response.text[:200]}[/yellow]"
                    )
            if requests:
                console.print(f"{name}: {len(requests) - failed} demo request(s) sent")


def _api_process(host: str, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "verticals.apps.api:create_app",
            "--host",
            host,
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    )


def _dashboard_process(host: str, port: int, api_url: str) -> subprocess.Popen:
    from verticals.apps.dashboard.sso import write_streamlit_secrets
    from verticals.core.accounts.settings import oidc_settings
    from verticals.core.config import get_settings

    env = {
        **os.environ,
        "VERTICALS_API_URL": api_url,
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    secrets_file = write_streamlit_secrets(oidc_settings(), get_settings().home)
    sso = ["--secrets.files", str(secrets_file)] if secrets_file is not None else []
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(DASHBOARD_SCRIPT),
            "--server.address",
            host,
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--global.developmentMode",
            "false",
            "--client.toolbarMode",
            "viewer",
            *sso,
        ],
        env=env,
    )


def _wait_until_up(url: str, path: str, process: subprocess.Popen) -> bool:
    return wait_until_ready(url, process, answers_below_500(path), timeout_s=120.0)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _supervise(processes: list[subprocess.Popen]) -> int:
    """Wait until Ctrl-C / SIGTERM (exit 0) or a child dies (exit 1); stop the rest."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        console.print("[red]a demo process exited; stopping the others[/red]")
        return 1
    except KeyboardInterrupt:
        console.print("stopping…")
        return 0
    finally:
        stop_processes(processes)


DEMO_USER = "demo"


def _demo_user_password(session: Session) -> str:
    """The demo admin's password: created on the first demo, renewed on every later one."""
    from verticals.core.accounts.users import create_user, find_user, reset_password

    if find_user(session, DEMO_USER) is None:
        return create_user(session, DEMO_USER, "admin").password
    return reset_password(session, DEMO_USER)


def serve_command(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the API: apply migrations, register missing production models, start uvicorn."""
    from verticals.core.serving.server import serve

    _, versions = _prepare()
    for domain, version in versions.items():
        console.print(f"{domain}: production model {version}")
    serve("verticals.apps.api:create_app", host=host, port=port, workers=workers)


def dashboard_command(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8501,
) -> None:
    """Start the Streamlit dashboard alone."""
    _prepare()
    process = _dashboard_process(host, port, os.environ.get("VERTICALS_API_URL", ""))
    raise typer.Exit(_supervise([process]))


def demo_command(
    api_port: Annotated[int, typer.Option("--api-port")] = 8000,
    dashboard_port: Annotated[int, typer.Option("--dashboard-port")] = 8501,
) -> None:
    """Start the API (127.0.0.1:8000) and the dashboard (127.0.0.1:8501) on shipped models.

    Works offline on a fresh install: shipped baseline models are registered on first use.
    Prints both URLs, a demo API key and the demo user's dashboard sign-in; Ctrl-C stops both.
    """
    from verticals.core.auth import create_key
    from verticals.core.db import session_scope

    host = "127.0.0.1"
    plugins, versions = _prepare()
    for domain, version in versions.items():
        console.print(f"{domain}: production model {version}")
    with session_scope() as session:
        key = create_key(session, "demo", ["*"]).key
        password = _demo_user_password(session)

    api_url = f"http://{host}:{api_port}"
    api = _api_process(host, api_port)
    if not _wait_until_up(api_url, "/healthz", api):
        stop_processes([api])
        console.print("[red]the API did not start; see the log above[/red]")
        raise typer.Exit(1)
    _send_demo_traffic(plugins, api_url, key)
    dashboard = _dashboard_process(host, dashboard_port, api_url)
    dashboard_url = f"http://{host}:{dashboard_port}"
    if not _wait_until_up(dashboard_url, "/_stcore/health", dashboard):
        stop_processes([api, dashboard])
        console.print("[red]the dashboard did not start; see the log above[/red]")
        raise typer.Exit(1)

    console.print(f"API:       {api_url}   (docs: {api_url}/docs, readiness: {api_url}/readyz)")
    console.print(f"Dashboard: {dashboard_url}")
    console.print(f"Dashboard sign-in: user {DEMO_USER}, role admin, password:")
    console.print(password, highlight=False, soft_wrap=True)
    console.print("Demo API key (send as 'Authorization: Bearer <key>'):")
    console.print(key, highlight=False, soft_wrap=True)
    console.print("Press Ctrl-C to stop.")
    raise typer.Exit(_supervise([api, dashboard]))
