"""Run an ASGI app under uvicorn, in one process or several sharing one listening socket.

With ``workers > 1`` uvicorn 0.54 binds the listener itself with ``proto=0``; connections
accepted from it inherit that, and asyncio then leaves Nagle's algorithm on (it sets
TCP_NODELAY only on sockets that report IPPROTO_TCP). Every keep-alive response after the
first then waits ~40 ms for the client's delayed ACK (uvicorn issue #3149). :func:`tcp_listener`
binds the socket with the protocol set, and :func:`serve` hands it to uvicorn's supervisor.

Also runnable as ``python -m verticals.core.serving.server MODULE:FACTORY --port N --workers W``
(benchmarks start servers that way).
"""

from __future__ import annotations

import argparse
import socket


def tcp_listener(host: str, port: int) -> socket.socket:
    """A bound, inheritable TCP socket whose accepted connections get TCP_NODELAY."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve(
    app: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    factory: bool = True,
    log_level: str = "info",
    access_log: bool = True,
) -> None:
    """Serve ``app`` (an import string, ``module:attribute``) until interrupted."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    config = uvicorn.Config(
        app,
        factory=factory,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=access_log,
    )
    if workers == 1:
        # one process: uvicorn binds through asyncio, which sets TCP_NODELAY itself
        uvicorn.Server(config).run()
        return
    listener = tcp_listener(host, port)
    try:
        Multiprocess(config, sockets=[listener]).run()
    finally:
        listener.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", help="module:factory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--no-access-log", action="store_true")
    args = parser.parse_args(argv)
    serve(
        args.app,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=not args.no_access_log,
    )


if __name__ == "__main__":
    main()
