"""Schemathesis over the whole OpenAPI of the app (every installed domain), all its checks, with
a key holding every scope: 0 server errors and 0 check failures, or the build fails.

The app runs under uvicorn on loopback in this process; Schemathesis's CLI runs against it in a
subprocess, as it would against a deployment. ``VERTICALS_FUZZ_EXAMPLES`` (default 8) bounds the
examples per operation and phase, so the run stays within a few minutes on two cores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

CONFIG = Path(__file__).with_name("schemathesis.toml")
EXAMPLES = int(os.environ.get("VERTICALS_FUZZ_EXAMPLES", "8"))
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def live_api(db, make_key, monkeypatch):
    import uvicorn
    from verticals.apps.api import create_app
    from verticals.core.config import reset_settings
    from verticals.core.serving.loopback import free_port

    # The fuzzer is one fast client that sends wrong keys on purpose: limits off for it.
    monkeypatch.setenv("VERTICALS_RATE_LIMIT", "off")
    monkeypatch.setenv("VERTICALS_TENANT_RATE_LIMIT", "off")
    monkeypatch.setenv("VERTICALS_AUTH_FAILURE_LIMIT", "off")
    # The product's domains only: the test plugin has a route that fails on purpose.
    monkeypatch.setenv("VERTICALS_LOAD_TEST_PLUGINS", "0")
    reset_settings()
    key = make_key(["*"], name="fuzzer")
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200 and server.started:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    else:
        pytest.fail("the API did not start")
    yield base, key
    server.should_exit = True
    thread.join(timeout=30)


def test_the_api_honours_its_openapi(live_api, tmp_path: Path):
    base, key = live_api
    st = Path(sys.executable).with_name("st")
    command = [
        str(st), "--config-file", str(CONFIG), "run", f"{base}/openapi.json",
        "--checks", "all",
        "--header", f"Authorization: Bearer {key}",
        "--max-examples", str(EXAMPLES),
        "--phases", "examples,coverage,fuzzing",
        "--seed", "16",
        "--workers", "1",
        "--no-shrink",
        "--request-timeout", "30",
        "--suppress-health-check", "all",
        "--report", "junit",
        "--report-dir", str(tmp_path),
    ]  # fmt: skip
    env = {**os.environ, "SCHEMATHESIS_HOOKS": ""}
    result = subprocess.run(  # in tmp_path: Schemathesis leaves a cache folder where it runs
        command, capture_output=True, text=True, timeout=280, env=env, cwd=tmp_path
    )
    report = os.environ.get("VERTICALS_FUZZ_REPORT")
    if report:
        Path(report).write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-4000:]
