"""Which base URLs a tenant may point ConnectWise calls at (the SSRF guard).

A tenant admin types the base URL, so it decides where our server sends requests carrying the
tenant's keys. Accepted: ``https`` on port 443 to a host matching ``CONNECTWISE_ALLOWED_HOSTS``
that resolves only to public addresses. With ``CONNECTWISE_ALLOW_LOOPBACK_HTTP`` (development
only) ``http://127.0.0.1:<port>``, ``http://[::1]:<port>`` and ``http://localhost:<port>`` are
accepted too, for the sandbox. :class:`GuardedAdapter` repeats the address check on the socket
actually connected, so DNS answers that change after validation are refused as well.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")

Resolver = Callable[[str], list[str]]


class UnsafeURLError(ValueError):
    """The base URL is not allowed; the message says why, for the admin."""


def resolve(host: str) -> list[str]:
    """Every address ``host`` resolves to."""
    infos = socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local, CGNAT, reserved and IPv4-mapped addresses."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped or ip.sixtofour or ip.teredo):
        return False
    cgnat = ipaddress.ip_network("100.64.0.0/10")
    return (
        not (
            ip.is_private
            or ip.is_loopback
            or ip.is_link_local
            or ip.is_multicast
            or ip.is_reserved
            or ip.is_unspecified
            or (isinstance(ip, ipaddress.IPv4Address) and ip in cgnat)
        )
        and ip.is_global
    )


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """Whether ``host`` matches one of ``patterns`` (``*.example.net`` matches subdomains)."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.lower().strip().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


@dataclass(frozen=True)
class URLPolicy:
    """The rules for base URLs, built from the app's configuration."""

    allowed_hosts: tuple[str, ...]
    allow_loopback_http: bool = False
    resolver: Resolver = resolve

    def is_loopback_url(self, url: str) -> bool:
        parts = urlsplit(url)
        return (
            self.allow_loopback_http
            and parts.scheme == "http"
            and ((parts.hostname or "") in LOOPBACK_NAMES)
        )

    def check(self, url: str, *, resolve_host: bool = True) -> str:
        """Return the normalised base URL, or raise :class:`UnsafeURLError` saying why."""
        if not isinstance(url, str) or not url.strip():
            raise UnsafeURLError(
                "Enter the ConnectWise API URL, e.g. https://api-na.myconnectwise.net"
            )
        url = url.strip()
        if len(url) > 255:
            raise UnsafeURLError("The URL is too long")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise UnsafeURLError("This is not a valid URL") from None
        host = (parts.hostname or "").lower()
        if not host:
            raise UnsafeURLError("The URL has no host name")
        if parts.username or parts.password:
            raise UnsafeURLError("The URL must not contain a user name or password")
        if parts.query or parts.fragment or parts.path not in ("", "/"):
            raise UnsafeURLError(
                "Enter the host only, without a path (e.g. https://api-na.myconnectwise.net)"
            )
        if self.is_loopback_url(url):
            netloc = f"[{host}]" if ":" in host else host
            return f"http://{netloc}:{port}" if port else f"http://{netloc}"
        if parts.scheme != "https":
            raise UnsafeURLError("The URL must start with https://")
        if port not in (None, 443):
            raise UnsafeURLError("ConnectWise is reached on port 443 only")
        if not host_allowed(host, self.allowed_hosts):
            allowed = ", ".join(self.allowed_hosts) or "(none)"
            raise UnsafeURLError(
                f"{host} is not an allowed ConnectWise host (allowed: {allowed}); an operator "
                "can add on-premises hosts to CONNECTWISE_ALLOWED_HOSTS"
            )
        if resolve_host:
            try:
                addresses = self.resolver(host)
            except OSError:
                raise UnsafeURLError(f"{host} could not be resolved") from None
            if not addresses or not all(is_public_address(a) for a in addresses):
                raise UnsafeURLError(f"{host} resolves to a private or reserved address")
        return f"https://{host}"


def _check_peer(sock: socket.socket, connection: Any, allow_loopback: bool) -> None:
    peer = str(sock.getpeername()[0])
    if is_public_address(peer) or (allow_loopback and ipaddress.ip_address(peer).is_loopback):
        return
    sock.close()
    raise urllib3.exceptions.NewConnectionError(
        connection, "refused: the ConnectWise host resolved to a non-public address"
    )


class _GuardedHTTPSConnection(HTTPSConnection):
    """Checks the connected peer before any byte (TLS included) is sent."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(sock, self, allow_loopback=False)
        return sock


class _GuardedHTTPConnection(HTTPConnection):
    """Plain HTTP is only for the loopback sandbox: the peer must be loopback."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        peer = str(sock.getpeername()[0])
        if not ipaddress.ip_address(peer).is_loopback:
            sock.close()
            raise urllib3.exceptions.NewConnectionError(
                self, "refused: plain HTTP is only allowed to loopback"
            )
        return sock


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class GuardedAdapter(HTTPAdapter):
    """A requests adapter that refuses sockets connected to non-public addresses.

    Plain ``http`` is only used for the loopback sandbox and checks that the peer is loopback.
    """

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _GuardedHTTPPool,
            "https": _GuardedHTTPSPool,
        }
        self.poolmanager.key_fn_by_scheme = dict(self.poolmanager.key_fn_by_scheme)
