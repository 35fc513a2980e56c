"""Base URL rules (SSRF guard) and the check on the socket actually connected."""

from __future__ import annotations

import contextlib
import socket
import threading

import pytest
import requests

from flask_connectwise.urlpolicy import (
    GuardedAdapter,
    UnsafeURLError,
    URLPolicy,
    host_allowed,
    is_public_address,
)

ALLOWED = ("*.myconnectwise.net", "*.connectwisedev.com", "cw.example-msp.com")


def policy(resolved: list[str], *, loopback: bool = False) -> URLPolicy:
    return URLPolicy(ALLOWED, allow_loopback_http=loopback, resolver=lambda host: resolved)


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://api-na.myconnectwise.net", "https://api-na.myconnectwise.net"),
        ("https://API-EU.myconnectwise.net/", "https://api-eu.myconnectwise.net"),
        ("https://api-staging.connectwisedev.com:443", "https://api-staging.connectwisedev.com"),
        ("https://cw.example-msp.com", "https://cw.example-msp.com"),
    ],
)
def test_allowed_urls(url, normalised):
    assert policy(["52.1.2.3"]).check(url) == normalised


@pytest.mark.parametrize(
    ("url", "resolved", "why"),
    [
        ("http://api-na.myconnectwise.net", ["52.1.2.3"], "https://"),
        ("https://myconnectwise.net", ["52.1.2.3"], "not an allowed"),
        ("https://evilmyconnectwise.net", ["52.1.2.3"], "not an allowed"),
        ("https://api-na.myconnectwise.net.evil.com", ["52.1.2.3"], "not an allowed"),
        ("https://api-na.myconnectwise.net:8443", ["52.1.2.3"], "port 443"),
        ("https://api-na.myconnectwise.net", ["127.0.0.1"], "private"),
        ("https://api-na.myconnectwise.net", ["10.1.2.3"], "private"),
        ("https://api-na.myconnectwise.net", ["169.254.169.254"], "private"),
        ("https://api-na.myconnectwise.net", ["100.64.0.7"], "private"),
        ("https://api-na.myconnectwise.net", ["::ffff:10.0.0.1"], "private"),
        ("https://api-na.myconnectwise.net", ["52.1.2.3", "192.168.0.1"], "private"),
        ("https://api-na.myconnectwise.net", [], "private"),
        ("https://u:p@api-na.myconnectwise.net", ["52.1.2.3"], "user name"),
        ("https://api-na.myconnectwise.net/v4_6_release", ["52.1.2.3"], "without a path"),
        ("https://api-na.myconnectwise.net?x=1", ["52.1.2.3"], "without a path"),
        ("http://127.0.0.1:8765", ["127.0.0.1"], "https://"),
        ("", [], "Enter"),
        ("https://[::1", [], "not a valid URL"),
    ],
)
def test_refused_urls(url, resolved, why):
    with pytest.raises(UnsafeURLError, match=why):
        policy(resolved).check(url)


def test_loopback_http_needs_the_development_setting():
    assert policy([], loopback=True).check("http://127.0.0.1:8765") == "http://127.0.0.1:8765"
    assert policy([], loopback=True).check("http://[::1]:8765") == "http://[::1]:8765"
    with pytest.raises(UnsafeURLError):
        policy([], loopback=True).check("http://10.0.0.1:8765")


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("52.1.2.3", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("0.0.0.0", False),  # noqa: S104
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("2001:4860:4860::8888", True),
        ("not-an-ip", False),
    ],
)
def test_public_addresses(address, public):
    assert is_public_address(address) is public


def test_host_patterns():
    assert host_allowed("api-au.myconnectwise.net", ALLOWED)
    assert not host_allowed("myconnectwise.net", ALLOWED)


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    seen: list[bytes] = []

    def accept() -> None:
        try:
            conn, _ = server.accept()
            conn.settimeout(1)
            with contextlib.suppress(OSError):
                seen.append(conn.recv(100))
            conn.close()
        except OSError:
            pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    server.close()
    thread.join(2)


def test_https_to_a_loopback_peer_is_refused_before_any_byte(listener):
    port, seen = listener
    session = requests.Session()
    session.mount("https://", GuardedAdapter())
    with pytest.raises(requests.exceptions.ConnectionError, match="non-public"):
        session.get(f"https://127.0.0.1:{port}/", timeout=2)
    assert seen in ([], [b""])  # not even a TLS hello was sent


def test_plain_http_to_loopback_is_allowed(connectwise_sandbox):
    session = requests.Session()
    session.mount("http://", GuardedAdapter())
    answer = session.get(f"{connectwise_sandbox.url}/login/companyinfo/sandbox", timeout=2)
    assert answer.status_code == 200
