"""Bind jobd's socket before anything else starts.

`jobd serve` binds first and opens (creates, migrates) the database only once it has its
port, so a start that cannot listen leaves no database behind; the error is one line. The
socket is only bound here: it starts listening when the HTTP server serves on it.
"""

from __future__ import annotations

import errno
import socket

from .errors import ConfigError


def resolve(host: str, port: int) -> tuple[int, tuple[object, ...]]:
    """The address family and socket address to bind `host:port`, or a one-line error."""
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}: unknown host ({exc.strerror})") from None
    return family, address


def bind(host: str, port: int, purpose: str = "") -> socket.socket:
    """A non-blocking socket bound to `host:port` (0: a free port), or a one-line error
    (`purpose`, e.g. " for metrics", says which of jobd's addresses it is)."""
    family, address = resolve(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio does
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        hint = ""
        if exc.errno == errno.EADDRINUSE and not purpose:
            # `make serve` takes no options: its port comes from the environment.
            hint = (
                " (is another jobd running? port 0 picks a free one: --port 0, or "
                "JOBD_PORT=0 make serve)"
            )
        raise ConfigError(
            f"cannot listen{purpose} on {host}:{port}: {exc.strerror}{hint}"
        ) from None
    return sock


_ANY_HOST = {"0.0.0.0", "::"}


def url_of(host: str, port: int) -> str:
    """The http URL jobd shows for an address it listens on: an IPv6 address in brackets, a
    wildcard host as this machine's name (which other machines can reach)."""
    if host in {"", *_ANY_HOST}:
        return f"http://{socket.gethostname()}:{port}"
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}"


def refuse_overlap(api: socket.socket, other: socket.socket, what: str) -> None:
    """A one-line error if `other` was bound to `api`'s port on an address that overlaps
    it: both are only bound so far (SO_REUSEADDR lets that pass), and the second to listen
    would fail later, with no clear error."""
    api_host, api_port = api.getsockname()[:2]
    host, port = other.getsockname()[:2]
    # IPv4 and IPv6 sockets do not share a port (jobd binds IPv6 ones IPv6-only).
    same_family = api.family == other.family
    if same_family and port == api_port and (host == api_host or {host, api_host} & _ANY_HOST):
        other.close()
        raise ConfigError(
            f"cannot {what}: jobd serves its API on that port; give it a port of its own"
        )
