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
from verticals.core.plugins import discover


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_demo_serves_api_and_dashboard_then_stops_cleanly(
    database_url, verticals_home, monkeypatch
):
    api_port, dashboard_port = _free_port(), _free_port()
    env = {**os.environ, "VERTICALS_DATABASE_URL": database_url}
    env.pop("VERTICALS_LOAD_TEST_PLUGINS", None)  # as a user runs it: the test plugin stays out
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
        password = re.search(r"user demo, role admin, password:\n(\S+)$", output, re.MULTILINE)
        from verticals.core.accounts.sessions import sign_in
        from verticals.core.config import reset_settings
        from verticals.core.db import reset_engines

        monkeypatch.setenv("VERTICALS_DATABASE_URL", database_url)  # the demo's database
        reset_settings()
        reset_engines()
        assert sign_in("demo", password.group(1)).principal.role == "admin"
        assert f"http://127.0.0.1:{dashboard_port}" in output
        api = f"http://127.0.0.1:{api_port}"
        assert httpx.get(f"{api}/healthz").json() == {"status": "ok"}
        headers = {"Authorization": f"Bearer {key}"}
        # the test plugin is installed in this environment, yet not part of the product
        assert "echo: production model" not in output
        assert httpx.get(f"{api}/v1/echo/boom", headers=headers).status_code == 404
        spec = httpx.get(f"{api}/openapi.json").json()
        assert not [path for path in spec["paths"] if path.startswith("/v1/echo")]
        assert "echo" not in httpx.get(f"{api}/readyz").json()["domains"]
        # each domain's sample traffic went through the API before the URLs were printed
        assert re.search(r"finance: 1 demo request\(s\) sent", output), output
        assert re.search(r"medical: 8 demo request\(s\) sent", output), output
        queue = httpx.get(f"{api}/v1/finance/review-queue?limit=5", headers=headers).json()
        assert queue["n_items"] > 0
        worklist = httpx.get(f"{api}/v1/medical/studies", headers=headers).json()
        assert len(worklist["studies"]) == 8
        ready = httpx.get(f"{api}/readyz")
        assert ready.status_code == 200, ready.text
        # the built-in domains answer on their shipped models
        transaction = {
            "transaction_id": "demo-test-1",
            "tx_datetime": "2018-09-01T12:00:00",
            "customer_id": "42",
            "terminal_id": "7",
            "amount": 57.3,
        }
        fraud = httpx.post(
            f"{api}/v1/finance/transactions:score", json=transaction, headers=headers
        )
        assert fraud.status_code == 200, fraud.text
        assert 0 <= fraud.json()["fraud_probability"] <= 1
        sample = next((discover().get("medical").demo_data() / "pneumonia").glob("*.dcm"))
        study = httpx.post(
            f"{api}/v1/medical/studies",
            files={"file": (sample.name, sample.read_bytes(), "application/dicom")},
            headers=headers,
            timeout=60,
        )
        assert study.status_code in (200, 201), study.text
        assert study.json()["task"] == "pneumonia"
        assert httpx.get(f"http://127.0.0.1:{dashboard_port}/_stcore/health").status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output + rest
    for port in (api_port, dashboard_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served"
