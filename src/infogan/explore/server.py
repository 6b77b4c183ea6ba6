"""Serving the explorer with uvicorn on a socket bound here, so that the address printed is the
one listening (also with port 0, any free port)."""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette

from ..errors import InfoGANError

LOOPBACK = ("127.0.0.1", "localhost")


def allowed_hosts(host: str) -> list[str]:
    """Host names the server answers to: the loopback names when bound there, else any."""
    return list(LOOPBACK) if host in LOOPBACK else ["*"]


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, or a clear error (port in use, unknown host)."""
    if not 0 <= port <= 65535:
        raise InfoGANError(f"--port must be from 0 to 65535 (0: any free port); got {port}")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise InfoGANError(f"cannot listen on {host!r}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        hint = "; choose another --port (0: any free port)" if port else ""
        raise InfoGANError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    return sock


def address(sock: socket.socket, host: str) -> str:
    """The URL to open: the host as given (a name stays a name), the port the socket has."""
    port = sock.getsockname()[1]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(app: Starlette, sock: socket.socket, host: str, announce: Callable[[str], None]) -> None:
    """Serve `app` on `sock` until Ctrl-C (or SIGTERM); `announce` gets the address first."""
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    announce(address(sock, host))
    uvicorn.Server(config).run(sockets=[sock])
