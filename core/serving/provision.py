"""Child server processes: a scratch home and database ready to serve one domain (benchmarks),
a server launched and waited for until it is ready, and stopping processes politely. The CLI's
``serve``/``dashboard``/``demo`` and every benchmark start their servers through these."""

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
    command = [
        sys.executable, "-m", "verticals.core.serving.server", factory,
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        "--no-access-log", "--workers", str(workers),
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_ready(url, process, ready, timeout_s):
            if process.poll() is not None:
                raise RuntimeError(f"{factory} exited with {process.returncode}")
            raise RuntimeError(f"{factory} did not get ready in {timeout_s:.0f}s")
        yield url, process
    finally:
        stop_processes([process], grace_s=10)


def wait_until_ready(
    url: str, process: subprocess.Popen, ready: Callable[[str], bool], timeout_s: float
) -> bool:
    """Poll ``ready(url)`` until it is true (True), the process exits or time runs out (False).
    ``ready`` may raise ``httpx.HTTPError`` or ``ValueError`` while the server starts."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if ready(url):
                return True
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    return False


def answers_below_500(path: str) -> Callable[[str], bool]:
    """A ``ready`` check: ``GET url + path`` answers with a status below 500."""

    def ready(url: str) -> bool:
        import httpx

        return httpx.get(f"{url}{path}", timeout=2.0).status_code < 500

    return ready


def stop_processes(processes: list[subprocess.Popen], grace_s: float = 15.0) -> None:
    """SIGTERM each process still running, wait ``grace_s`` for each, then kill."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
