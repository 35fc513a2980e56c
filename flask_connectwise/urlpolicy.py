"""Which base URLs a tenant may point ConnectWise calls at (the SSRF guard).

A tenant admin types the base URL, so it decides where our server sends requests carrying the
tenant's keys. Accepted: ``https`` on port 443 to a host matching ``CONNECTWISE_ALLOWED_HOSTS``
that resolves only to public addresses. Host names are ``[a-z0-9.-]`` only (a non-ASCII name is
converted with IDNA first); ``\\``, ``@``, ``%``, whitespace and any other character are refused
anywhere in the host part, and the host must be exactly the one urllib3 and requests would
connect to. With ``CONNECTWISE_ALLOW_LOOPBACK_HTTP`` (development only)
``http://127.0.0.1:<port>``, ``http://[::1]:<port>`` and ``http://localhost:<port>`` are accepted
too, for the sandbox, limited to ``CONNECTWISE_LOOPBACK_PORTS`` when that is set.
:class:`GuardedAdapter` repeats the address check on the socket actually connected, so DNS
answers that change after validation are refused as well.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import idna
import urllib3
from requests.adapters import HTTPAdapter
from requests.exceptions import RequestException
from requests.models import PreparedRequest
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

log = logging.getLogger("flask_connectwise.urlpolicy")

LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
ALLOW_SETTING = "CONNECTWISE_ALLOW_LOOPBACK_HTTP"
PORTS_SETTING = "CONNECTWISE_LOOPBACK_PORTS"

Resolver = Callable[[str], list[str]]

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PORT = re.compile(r"[0-9]{1,5}")
#: Characters that never belong in a base URL (they make parsers disagree on the host).
_FORBIDDEN = {"\\": "a backslash", "@": "a user name or password", "%": "percent-encoding"}


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
class ParsedURL:
    """A base URL split strictly: lower-case scheme, ASCII host (no brackets), port or None."""

    scheme: str
    host: str
    port: int | None


def _same_host(seen: str | None, host: str) -> bool:
    if not seen:
        return False
    return seen.lower().strip("[]").rstrip(".") == host


def library_hosts(url: str) -> tuple[str | None, str | None]:
    """The host urllib3 and requests would connect to for ``url`` (``None``: cannot parse)."""
    try:
        by_urllib3 = parse_url(url).host
    except (LocationParseError, ValueError):
        by_urllib3 = None
    try:
        prepared = PreparedRequest()
        prepared.prepare_url(url, None)
        by_requests = parse_url(str(prepared.url)).host
    except (RequestException, LocationParseError, ValueError, UnicodeError):
        by_requests = None
    return by_urllib3, by_requests


def split_url(url: str) -> ParsedURL:
    """Split ``url`` into scheme, host and port, refusing anything ambiguous.

    The host is ``[a-z0-9.-]`` labels after IDNA (or the IPv6 literal ``::1``), without
    userinfo, ``%``, ``\\``, whitespace or other characters; only ``/`` may follow it; and
    urllib3 and requests must read the same host from ``url``.
    """
    for char in url:
        if char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F:
            raise UnsafeURLError("The URL must not contain spaces, tabs or line breaks")
    scheme, sep, rest = url.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        raise UnsafeURLError("This is not a valid URL")
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    for char, what in _FORBIDDEN.items():
        if char in authority or (char == "\\" and char in tail):
            raise UnsafeURLError(f"The URL must not contain {what}")
    if tail not in ("", "/"):
        raise UnsafeURLError(
            "Enter the host only, without a path (e.g. https://api-na.myconnectwise.net)"
        )
    port_text: str | None = None
    if authority.startswith("["):
        inside, bracket, after = authority[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise UnsafeURLError("This is not a valid URL")
        host = inside.lower()
        port_text = after[1:] if after else None
        if host != "::1":
            raise UnsafeURLError("Enter a host name, not an IPv6 address")
    else:
        host, colon, port_text_found = authority.partition(":")
        port_text = port_text_found if colon else None
        if not host.isascii():
            try:
                host = idna.encode(host, uts46=True).decode("ascii")
            except (idna.IDNAError, UnicodeError):
                raise UnsafeURLError(f"{host} is not a valid host name") from None
        host = host.lower()
        if host.endswith(".") and not host.endswith(".."):
            host = host[:-1]
        if not host:
            raise UnsafeURLError("The URL has no host name")
        if len(host) > 253 or not _HOST_NAME.fullmatch(host):
            raise UnsafeURLError(
                f"{host} is not a valid host name (letters, digits, dots and hyphens only)"
            )
    port: int | None = None
    if port_text is not None:
        if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
            raise UnsafeURLError("This is not a valid URL (the port must be a number)")
        port = int(port_text)
    for seen in library_hosts(url):
        if not _same_host(seen, host):
            raise UnsafeURLError(
                "The host name in this URL is ambiguous (the HTTP library reads it "
                "differently); enter it as https://<host>"
            )
    return ParsedURL(scheme.lower(), host, port)


def loopback_ports(value: Any) -> frozenset[int] | None:
    """Parse ``CONNECTWISE_LOOPBACK_PORTS``: ``None`` (any port), a port, or several
    (a list or a comma-separated string). ``ValueError`` names the setting when invalid."""
    if value is None:
        return None
    items: Iterable[Any]
    if isinstance(value, str):
        items = [p for p in value.replace(" ", "").split(",") if p]
    elif isinstance(value, int) and not isinstance(value, bool):
        items = [value]
    elif isinstance(value, Iterable):
        items = list(value)
    else:
        raise ValueError(f"{PORTS_SETTING} must be a list of port numbers (got {value!r})")
    ports = set()
    for item in items:
        try:
            port = int(item)
        except (TypeError, ValueError):
            port = -1
        if isinstance(item, bool) or not 0 < port < 65536:
            raise ValueError(f"{PORTS_SETTING}: {item!r} is not a port number (1-65535)")
        ports.add(port)
    return frozenset(ports)


@dataclass(frozen=True)
class URLPolicy:
    """The rules for base URLs, built from the app's configuration.

    ``loopback_ports`` limits the development loopback URLs to those ports (``None``: any).
    """

    allowed_hosts: tuple[str, ...]
    allow_loopback_http: bool = False
    resolver: Resolver = resolve
    loopback_ports: frozenset[int] | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any], **kwargs: Any) -> URLPolicy:
        """The policy of an app's config; warns when loopback URLs are allowed on any port."""
        allow = config.get(ALLOW_SETTING, False)
        ports = loopback_ports(config.get(PORTS_SETTING))
        if allow not in (True, False, None):  # a port or a list of ports: those only
            ports = (ports or frozenset()) | (loopback_ports(allow) or frozenset())
            allow = True
        if allow and ports is None:
            log.warning(
                "%s is on for every port: any loopback service can receive tenants' "
                "ConnectWise keys. Development only; set %s to the sandbox's port.",
                ALLOW_SETTING,
                PORTS_SETTING,
            )
        return cls(
            allowed_hosts=tuple(config.get("CONNECTWISE_ALLOWED_HOSTS") or ()),
            allow_loopback_http=bool(allow),
            loopback_ports=ports,
            **kwargs,
        )

    def is_loopback_url(self, url: str) -> bool:
        """Whether ``url`` is an accepted development loopback URL (``http``, allowed port)."""
        try:
            parts = split_url(url.strip())
        except UnsafeURLError:
            return False
        return self._loopback_refusal(parts) is None and parts.host in LOOPBACK_NAMES

    def _loopback_refusal(self, parts: ParsedURL) -> str | None:
        """Why a loopback ``http`` URL is refused (``None``: accepted)."""
        if parts.scheme != "http" or parts.host not in LOOPBACK_NAMES:
            return "not loopback"
        if not self.allow_loopback_http:
            return (
                "The URL must start with https://. Plain http:// to this machine (the "
                f"development sandbox) needs {ALLOW_SETTING}, which must stay off in production"
            )
        port = parts.port or 80
        if self.loopback_ports is not None and port not in self.loopback_ports:
            allowed = ", ".join(str(p) for p in sorted(self.loopback_ports)) or "none"
            return (
                f"Port {port} is not an allowed sandbox port (allowed: {allowed}); "
                f"{PORTS_SETTING} lists the loopback ports {ALLOW_SETTING} accepts"
            )
        return None

    def check(self, url: str, *, resolve_host: bool = True) -> str:
        """Return the normalised base URL, or raise :class:`UnsafeURLError` saying why."""
        if not isinstance(url, str) or not url.strip():
            raise UnsafeURLError(
                "Enter the ConnectWise API URL, e.g. https://api-na.myconnectwise.net"
            )
        url = url.strip()
        if len(url) > 255:
            raise UnsafeURLError("The URL is too long")
        parts = split_url(url)
        host, port = parts.host, parts.port
        if parts.scheme == "http" and host in LOOPBACK_NAMES:
            refusal = self._loopback_refusal(parts)
            if refusal is not None:
                raise UnsafeURLError(refusal)
            netloc = f"[{host}]" if ":" in host else host
            return f"http://{netloc}:{port}" if port else f"http://{netloc}"
        if host in LOOPBACK_NAMES:
            raise UnsafeURLError(
                f"{host} is this machine: only the development sandbox runs here, reached as "
                f"http://{host}:<port> with {ALLOW_SETTING} on (development only)"
            )
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
                raise UnsafeURLError(_private_refusal(host, addresses))
        return f"https://{host}"


def _private_refusal(host: str, addresses: list[str]) -> str:
    """Why ``host`` is refused for resolving to a non-public address, naming what allows it."""
    try:
        loopback = bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)
    except ValueError:
        loopback = False
    if loopback:
        return (
            f"{host} resolves to this machine, a private address: only the development sandbox "
            "runs here, reached as http://127.0.0.1:<port> with "
            f"{ALLOW_SETTING} on (development only)"
        )
    return (
        f"{host} resolves to a private or reserved address; ConnectWise must be reached on a "
        f"public address (no setting allows private ones; {ALLOW_SETTING} allows only the "
        "development sandbox on this machine)"
    )


def _check_peer(sock: socket.socket, connection: Any, allow_loopback: bool) -> None:
    peer = str(sock.getpeername()[0])
    if is_public_address(peer) or (allow_loopback and ipaddress.ip_address(peer).is_loopback):
        return
    sock.close()
    raise urllib3.exceptions.NewConnectionError(
        connection,
        "refused: the ConnectWise host resolved to a non-public address (only the development "
        f"sandbox on this machine is allowed, over http:// with {ALLOW_SETTING})",
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
