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
    library_hosts,
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


# -- hostile base URLs: every parser must agree on the host, or the URL is refused -------------

#: (url, what the refusal says). Each would reach a host other than the allowed one in at least
#: one parser (urlsplit, urllib3, requests, a browser), or smuggle characters into the host.
BYPASS_ATTEMPTS = [
    ("https://evil.com\\.x.myconnectwise.net", "backslash"),
    ("https://evil.com\\@api-na.myconnectwise.net", "backslash"),
    ("https://api-na.myconnectwise.net\\", "backslash"),
    ("https://api-na.myconnectwise.net:443\\@evil.com", "backslash"),
    ("https://evil.com@api-na.myconnectwise.net", "user name"),
    ("https://api-na.myconnectwise.net@evil.com", "user name"),
    ("https://a@evil.com@x.myconnectwise.net", "user name"),
    ("https://:@api-na.myconnectwise.net", "user name"),
    ("https://api-na.myconnectwise.net\t.evil.com", "spaces, tabs or line breaks"),
    ("https://api-na.myconnectwise.net\n.evil.com", "spaces, tabs or line breaks"),
    ("https://api-na.myconnectwise.net\r\nHost: evil.com", "spaces, tabs or line breaks"),
    ("https://api-na.myconnectwise .net", "spaces, tabs or line breaks"),
    ("https://api-na.myconnectwise.net\x00.evil.com", "spaces, tabs or line breaks"),
    ("https://api-na\u00a0.myconnectwise.net", "spaces, tabs or line breaks"),
    ("https://evil.com%2F.x.myconnectwise.net", "percent-encoding"),
    ("https://evil.com%5C.x.myconnectwise.net", "percent-encoding"),
    ("https://%61pi-na.myconnectwise.net", "percent-encoding"),
    ("https://[fe80::1%25eth0]", "percent-encoding"),
    ("https://[fe80::1%eth0]:443", "percent-encoding"),
    ("https://api-na。myconnectwise。net", "ambiguous"),  # ideographic full stops
    ("https://evil.com。x.myconnectwise.net", "ambiguous"),
    ("https://api-na．myconnectwise．net", "ambiguous"),  # fullwidth full stops
    ("https://ａｐｉ-na.myconnectwise.net", "ambiguous"),  # fullwidth letters
    ("https://evil.com／.x.myconnectwise.net", "not a valid host name"),  # fullwidth solidus
    ("https://api-na.myconnectwise.net..", "not a valid host name"),
    ("https://api-na..myconnectwise.net", "not a valid host name"),
    ("https://.api-na.myconnectwise.net", "not a valid host name"),
    ("https://evil.com;.x.myconnectwise.net", "not a valid host name"),
    ("https://evil.com,.x.myconnectwise.net", "not a valid host name"),
    ("https://x_y.myconnectwise.net", "not a valid host name"),
    ("https://-x.myconnectwise.net", "not a valid host name"),
    ("https://[::ffff:52.1.2.3]", "not an IPv6 address"),
    ("https://[2001:db8::1]:443", "not an IPv6 address"),
    ("https://evil.com#.x.myconnectwise.net", "without a path"),
    ("https://evil.com?.x.myconnectwise.net", "without a path"),
    ("https://evil.com/.x.myconnectwise.net", "without a path"),
    ("https://api-na.myconnectwise.net#", "without a path"),
    ("https://api-na.myconnectwise.net:", "port must be a number"),
    ("https://api-na.myconnectwise.net:44x3", "port must be a number"),
    ("https://api-na.myconnectwise.net:99999", "port must be a number"),
    ("https://api-na.myconnectwise.net.:443.evil.com", "port must be a number"),
    ("https:/api-na.myconnectwise.net", "not a valid URL"),
    ("//api-na.myconnectwise.net", "not a valid URL"),
    ("api-na.myconnectwise.net", "not a valid URL"),
]


@pytest.mark.parametrize(("url", "why"), BYPASS_ATTEMPTS)
def test_bypass_attempts_are_refused(url, why):
    resolved: list[str] = []

    def resolver(host: str) -> list[str]:
        resolved.append(host)
        return ["52.1.2.3"]

    hostile = URLPolicy(ALLOWED, allow_loopback_http=True, resolver=resolver)
    with pytest.raises(UnsafeURLError, match=why):
        hostile.check(url)
    assert resolved == []  # refused before any DNS look-up


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        # A trailing dot is the same host for DNS; the stored URL has none.
        ("https://api-na.myconnectwise.net.", "https://api-na.myconnectwise.net"),
        ("HTTPS://API-NA.MYCONNECTWISE.NET:443/", "https://api-na.myconnectwise.net"),
        # A non-ASCII host is stored IDNA-encoded: the same ASCII name every library sends.
        ("https://bücher.myconnectwise.net", "https://xn--bcher-kva.myconnectwise.net"),
        ("https://xn--bcher-kva.myconnectwise.net", "https://xn--bcher-kva.myconnectwise.net"),
    ],
)
def test_accepted_urls_are_stored_in_the_form_the_http_library_connects_to(url, normalised):
    checked = policy(["52.1.2.3"]).check(url)
    assert checked == normalised
    host = normalised.split("://", 1)[1]
    assert library_hosts(checked) == (host, host)
    assert library_hosts(url)[0].rstrip(".") == host  # urllib3 reads the same host as we do


def test_the_backslash_bypass_reaches_another_host_in_urllib3():
    """Why backslashes are refused: urlsplit and urllib3 disagree on the host."""
    from urllib.parse import urlsplit

    url = "https://evil.com\\.x.myconnectwise.net"
    assert host_allowed(urlsplit(url).hostname or "", ALLOWED)  # what the old policy saw
    assert library_hosts(url)[0] == "evil.com"  # where urllib3 would connect


def test_loopback_urls_in_a_hostile_form_are_refused():
    dev = URLPolicy(ALLOWED, allow_loopback_http=True, resolver=lambda host: [])
    for url in (
        "http://127.0.0.1\\@evil.com:8765",
        "http://evil.com\\@127.0.0.1:8765",
        "http://127.0.0.1:8765@evil.com",
        "http://[::1%25lo]:8765",
        "http://127.0.0.1:8765/#@evil.com",
        "http://localhost\t:8765",
    ):
        with pytest.raises(UnsafeURLError):
            dev.check(url)
        assert not dev.is_loopback_url(url)


# -- the loopback development setting: only the sandbox's port(s) --------------------------------


def test_loopback_urls_are_limited_to_the_configured_ports():
    dev = URLPolicy(
        ALLOWED, allow_loopback_http=True, resolver=lambda h: [], loopback_ports=frozenset({8765})
    )
    assert dev.check("http://127.0.0.1:8765") == "http://127.0.0.1:8765"
    assert dev.check("http://[::1]:8765/") == "http://[::1]:8765"
    assert dev.check("http://localhost:8765") == "http://localhost:8765"
    for url in (
        "http://127.0.0.1:6379",
        "http://127.0.0.1:5432",
        "http://[::1]:22",
        "http://localhost",
    ):
        with pytest.raises(UnsafeURLError, match="CONNECTWISE_LOOPBACK_PORTS") as refused:
            dev.check(url)
        assert "not an allowed sandbox port (allowed: 8765)" in str(refused.value)
        assert not dev.is_loopback_url(url)


def test_a_refused_loopback_url_names_the_setting_that_allows_it():
    with pytest.raises(UnsafeURLError, match="CONNECTWISE_ALLOW_LOOPBACK_HTTP") as refused:
        policy([]).check("http://127.0.0.1:8765")
    assert "must stay off in production" in str(refused.value)


@pytest.mark.parametrize(
    ("config", "allowed", "refused"),
    [
        ({"CONNECTWISE_ALLOW_LOOPBACK_HTTP": False}, [], ["http://127.0.0.1:8765"]),
        (
            {"CONNECTWISE_ALLOW_LOOPBACK_HTTP": True, "CONNECTWISE_LOOPBACK_PORTS": [8765]},
            ["http://127.0.0.1:8765"],
            ["http://127.0.0.1:6379"],
        ),
        (
            {"CONNECTWISE_ALLOW_LOOPBACK_HTTP": True, "CONNECTWISE_LOOPBACK_PORTS": "8765, 8766"},
            ["http://127.0.0.1:8765", "http://127.0.0.1:8766"],
            ["http://127.0.0.1:6379"],
        ),
        (  # the setting itself may name the port(s)
            {"CONNECTWISE_ALLOW_LOOPBACK_HTTP": [8765]},
            ["http://127.0.0.1:8765"],
            ["http://127.0.0.1:6379"],
        ),
        ({"CONNECTWISE_ALLOW_LOOPBACK_HTTP": 8765}, ["http://[::1]:8765"], ["http://[::1]:80"]),
        (  # ports without the switch: still off
            {"CONNECTWISE_ALLOW_LOOPBACK_HTTP": False, "CONNECTWISE_LOOPBACK_PORTS": [8765]},
            [],
            ["http://127.0.0.1:8765"],
        ),
    ],
)
def test_policy_from_config(config, allowed, refused, caplog):
    built = URLPolicy.from_config({"CONNECTWISE_ALLOWED_HOSTS": ALLOWED, **config})
    for url in allowed:
        assert built.check(url, resolve_host=False) == url
    for url in refused:
        with pytest.raises(UnsafeURLError):
            built.check(url, resolve_host=False)
    assert "every port" not in caplog.text


def test_any_loopback_port_still_works_with_true_but_warns(caplog):
    with caplog.at_level("WARNING", logger="flask_connectwise.urlpolicy"):
        built = URLPolicy.from_config(
            {"CONNECTWISE_ALLOWED_HOSTS": ALLOWED, "CONNECTWISE_ALLOW_LOOPBACK_HTTP": True}
        )
    assert built.check("http://127.0.0.1:6379", resolve_host=False) == "http://127.0.0.1:6379"
    assert "CONNECTWISE_ALLOW_LOOPBACK_HTTP is on for every port" in caplog.text
    assert "CONNECTWISE_LOOPBACK_PORTS" in caplog.text


@pytest.mark.parametrize("ports", [["http"], [0], [70000], [True], "80,x", 3.5])
def test_invalid_loopback_ports_name_the_setting(ports):
    with pytest.raises(ValueError, match="CONNECTWISE_LOOPBACK_PORTS"):
        URLPolicy.from_config(
            {"CONNECTWISE_ALLOW_LOOPBACK_HTTP": True, "CONNECTWISE_LOOPBACK_PORTS": ports}
        )


def test_the_sandbox_fixture_config_accepts_its_port_only(
    connectwise_sandbox, connectwise_sandbox_config
):
    built = URLPolicy.from_config(
        {"CONNECTWISE_ALLOWED_HOSTS": ALLOWED, **connectwise_sandbox_config}
    )
    assert built.check(connectwise_sandbox.url) == connectwise_sandbox.url
    with pytest.raises(UnsafeURLError, match="CONNECTWISE_LOOPBACK_PORTS"):
        built.check(f"http://127.0.0.1:{connectwise_sandbox.port + 1}")
