"""Serving the explorer with uvicorn on a socket bound here, so that the address printed is the
one listening (also with port 0, any free port)."""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from infogan.errors import InfoGANError
from infogan.explore.app import create_app
from infogan.explore.runs import MAX_CODE, load_runs

LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]")


def is_loopback(address: str) -> bool:
    """Whether `address` (an IP address as text) is one of this machine's own: 127.0.0.0/8, ::1."""
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def allowed_hosts(sock: socket.socket, host: str) -> list[str]:
    """Host names the server answers to, with or without a port. Bound to a loopback address
    (any of 127.0.0.0/8 or ::1, also through a name such as localhost): that address as given
    and as bound, and the loopback names, so that a page of another name that resolves here
    (DNS rebinding) is refused. Bound elsewhere (other machines reach it): any."""
    bound = sock.getsockname()[0]
    if not is_loopback(bound):
        return ["*"]
    return sorted({*LOCAL_NAMES, _literal(host), _literal(bound)})


def _literal(host: str) -> str:
    """A host as a Host header names it: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host else host.lower()


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


def explore(
    paths: list[str | Path],
    host: str = "127.0.0.1",
    port: int = 8765,
    value_range: tuple[float, float] = (-2.0, 2.0),
    device: str = "cpu",
) -> None:
    """Serve the explorer for one model or two side by side (run directories, export folders
    or .safetensors files) until Ctrl-C, printing its address; what `infogan explore` runs."""
    low, high = value_range
    if not -MAX_CODE <= low < high <= MAX_CODE:
        raise InfoGANError(f"the range needs -{MAX_CODE:g} <= LOW < HIGH <= {MAX_CODE:g}; got {low:g} {high:g}")
    sock = bind(host, port)  # before loading, so a port in use fails at once
    try:
        runs = load_runs([Path(p) for p in paths], device)
        for run in runs:
            if run.error or run.labels.note:
                print(f"note: {run.name}: {run.error or run.labels.note}", file=sys.stderr)
        hosts = allowed_hosts(sock, host)
        if hosts == ["*"]:
            print(f"note: listening on {host}: other machines that reach it can use the explorer", file=sys.stderr)
        app = create_app(runs, (low, high), hosts)
        names = " and ".join(run.name for run in runs)
        serve(app, sock, host, lambda url: print(f"exploring {names} at {url} (Ctrl-C to stop)", flush=True))
    finally:
        sock.close()
