"""The benchmarks' loopback helpers: the echo reference and a free port. (The load generator
and the scratch databases are tested through their first user, tests/domains/finance/
test_bench.py, and tests/domains/manufacturing/test_bench.py.)"""

from __future__ import annotations

import socket

from fastapi.testclient import TestClient
from verticals.core.serving.loopback import echo_app, free_port


def test_the_echo_returns_what_it_is_sent_and_a_small_object_on_get() -> None:
    client = TestClient(echo_app())
    posted = client.post("/echo", content=b'{"a": [1, 2]}')
    assert posted.status_code == 200 and posted.content == b'{"a": [1, 2]}'
    got = client.get("/echo")
    assert got.status_code == 200 and got.json() == {"ok": True}


def test_a_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
