"""`verticals demo` as a user runs it: both servers come up on shipped models and stop on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_demo_serves_api_and_dashboard_then_stops_cleanly(database_url, verticals_home):
    api_port, dashboard_port = _free_port(), _free_port()
    env = {**os.environ, "VERTICALS_DATABASE_URL": database_url}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from verticals.apps.cli.main import main; main()",
            "demo",
            "--api-port",
            str(api_port),
            "--dashboard-port",
            str(dashboard_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    output = ""
    try:
        deadline = time.monotonic() + 240
        while "Press Ctrl-C" not in output and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            output += line
        assert "Press Ctrl-C" in output, output
        key = re.search(r"^(vk_\S+)$", output, re.MULTILINE).group(1)
        assert f"http://127.0.0.1:{dashboard_port}" in output
        api = f"http://127.0.0.1:{api_port}"
        assert httpx.get(f"{api}/healthz").json() == {"status": "ok"}
        scored = httpx.post(
            f"{api}/v1/echo/score",
            json={"values": [1, 1, 1]},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert scored.status_code == 200
        assert httpx.get(f"http://127.0.0.1:{dashboard_port}/_stcore/health").status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output + rest
    for port in (api_port, dashboard_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served"
