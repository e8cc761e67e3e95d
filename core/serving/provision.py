"""What a benchmark's server runs on: a scratch home and database ready to serve one domain,
and the server itself in a child process, waited for until it is ready."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HOME_ENV = ("VERTICALS_HOME", "VERTICALS_DATABASE_URL")


def provision_scratch(home: Path, database_url: str, domain: str, scopes: list[str]) -> str:
    """Migrate ``database_url``, register ``domain``'s production model under ``home`` and create
    an API key with ``scopes``; returns the key. This process's settings and engines point at the
    scratch home only while it runs (the caller's environment is restored before returning), so a
    server started afterwards with ``VERTICALS_HOME``/``VERTICALS_DATABASE_URL`` set finds it
    ready."""
    from verticals.core.auth import create_key
    from verticals.core.bootstrap import prepare_database
    from verticals.core.config import reset_settings
    from verticals.core.db import reset_engines, session_scope
    from verticals.core.plugins import discover

    saved = {k: os.environ.get(k) for k in HOME_ENV}
    os.environ.update({"VERTICALS_HOME": str(home), "VERTICALS_DATABASE_URL": database_url})
    reset_settings()
    reset_engines()
    try:
        plugins = discover()
        prepare_database(plugins)
        plugins.domains[domain].ensure_production_model()
        with session_scope() as session:
            return create_key(session, "bench", scopes).key
    finally:
        reset_engines()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_settings()


@contextmanager
def launched_server(
    factory: str,
    env: dict[str, str],
    port: int,
    *,
    ready: Callable[[str], bool],
    workers: int = 1,
    timeout_s: float = 120.0,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``verticals.core.serving.server`` serving ``factory`` on 127.0.0.1:``port`` in a child
    process; yields (base URL, process) once ``ready(url)`` is true, stops it afterwards.
    ``ready`` may raise ``httpx.HTTPError`` or ``ValueError`` while the server starts."""
    import httpx

    command = [
        sys.executable, "-m", "verticals.core.serving.server", factory,
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        "--no-access-log", "--workers", str(workers),
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{factory} exited with {process.returncode}")
            try:
                if ready(url):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{factory} did not get ready in {timeout_s:.0f}s")
            time.sleep(0.2)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
