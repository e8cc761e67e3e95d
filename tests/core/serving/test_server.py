import asyncio
import socket

import pytest
from verticals.core.serving.server import serve, tcp_listener


async def _nodelay_of_accepted(listener: socket.socket) -> int:
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(on_connect, sock=listener)
    host, port = listener.getsockname()[:2]
    _, client = await asyncio.open_connection(host, port)
    try:
        return await asyncio.wait_for(seen, 5)
    finally:
        client.close()
        server.close()
        await server.wait_closed()


def test_connections_accepted_from_the_shared_listener_disable_nagle():
    listener = tcp_listener("127.0.0.1", 0)
    assert listener.proto == socket.IPPROTO_TCP
    assert listener.get_inheritable()
    assert asyncio.run(_nodelay_of_accepted(listener)) == 1


def test_a_listener_bound_without_the_protocol_keeps_nagle_on():
    # what uvicorn's own bind_socket() does for --workers > 1 (uvicorn issue #3149)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    assert asyncio.run(_nodelay_of_accepted(listener)) == 0


def test_serve_refuses_zero_workers():
    with pytest.raises(ValueError, match="workers"):
        serve("verticals.apps.api:create_app", workers=0)
