"""Pytest fixtures that run the ConnectWise sandbox over loopback.

In a host application's ``conftest.py``::

    pytest_plugins = ["flask_connectwise.testing"]

    @pytest.fixture
    def app(connectwise_sandbox_config):
        # Loopback URLs on the sandbox's port only (never set these in production).
        return create_app(connectwise_sandbox_config)

    def test_logs_a_note(app, connectwise_sandbox):
        creds = connectwise_sandbox.credentials   # base_url, company_id, keys, client_id
        ...
        assert connectwise_sandbox.notes(12345)[-1]["text"] == "Voice configuration updated"

    def test_logs_a_note(app, connectwise_sandbox):
        configure_tenant(app, "contoso", connectwise_sandbox)   # credentials stored, flag on
        ...                                                     # the host app logs a change
        assert connectwise_sandbox.writes(path="service/tickets/*/notes")
        assert connectwise_sandbox.requests(method="PATCH") == []

``configure_tenant(app_or_cw, tenant_id, sandbox, flag=True)`` stores the sandbox's credentials
for a tenant through the extension's ``Tenants`` service (as the admin or JSON API would) and
turns the feature flag on. ``connectwise_sandbox.requests`` is what reached the sandbox (a list;
call it with ``method=`` / ``path=`` to filter, the path a glob per segment such as
``"service/tickets/*/notes"``); ``connectwise_sandbox.writes()`` the POST/PATCH/PUT/DELETE among
them; ``clear_requests()`` empties the log.

``connectwise_sandbox_server`` (session scope) starts one sandbox on a free loopback port and
stops it at the end; ``connectwise_sandbox`` (function scope) hands out that same server after
``reset()`` (seed data, no faults, latency, rate limit or logged requests).
``connectwise_sandbox_rules`` (function scope, default ``None`` = the lenient demo rules) picks
the tenant rules ``connectwise_sandbox`` runs under: override it, or parametrise it indirectly
with a profile name, a ``SandboxRules`` or a dict of overrides::

    @pytest.mark.parametrize("connectwise_sandbox_rules", ["lenient", "strict"], indirect=True)
    def test_flow(connectwise_sandbox): ...

``connectwise_sandbox_config`` is the app config that accepts that sandbox's URL:
``CONNECTWISE_ALLOW_LOOPBACK_HTTP`` with ``CONNECTWISE_LOOPBACK_PORTS`` set to its port.
"""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask, current_app

from flask_connectwise.current import state
from flask_connectwise.extension import ConnectWise
from flask_connectwise.sandbox import Sandbox, SandboxRules

__all__ = [
    "configure_tenant",
    "connectwise_sandbox",
    "connectwise_sandbox_config",
    "connectwise_sandbox_rules",
    "connectwise_sandbox_server",
    "form_fields",
    "post_form",
]


def configure_tenant(
    app_or_cw: Flask | ConnectWise,
    tenant_id: str,
    sandbox: Sandbox,
    *,
    flag: bool = True,
    actor: str = "test",
    **settings: Any,
) -> None:
    """Store ``sandbox``'s credentials for ``tenant_id`` and set its feature flag to ``flag``.

    ``app_or_cw``: the host app, or the ``ConnectWise`` extension (then inside an app context).
    ``settings``: more credential fields in the JSON API's names, e.g. ``autoUpdateStatus=True``
    or ``defaultTimeMinutes=30``.
    """
    creds = sandbox.credentials
    payload: dict[str, Any] = {
        "baseUrl": creds["base_url"],
        "companyId": creds["company_id"],
        "publicKey": creds["public_key"],
        "privateKey": creds["private_key"],
        "clientId": creds["client_id"],
        "defaultTimeMinutes": 15,
        "autoUpdateStatus": False,
    } | settings
    if isinstance(app_or_cw, Flask):
        with app_or_cw.app_context():
            _store(tenant_id, payload, flag, actor)
    else:
        _store(tenant_id, payload, flag, actor)  # the app of the current context


def _store(tenant_id: str, payload: dict[str, Any], flag: bool, actor: str) -> None:
    tenants = state(current_app).tenants
    tenants.set_flag(tenant_id, flag, actor=actor)
    tenants.save_credentials(tenant_id, payload, actor=actor)


@pytest.fixture(scope="session")
def connectwise_sandbox_server() -> Iterator[Sandbox]:
    """One running sandbox for the whole session."""
    sandbox = Sandbox(host="127.0.0.1", port=0).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def connectwise_sandbox_rules(
    request: pytest.FixtureRequest,
) -> SandboxRules | str | dict[str, Any] | None:
    """Tenant rules for ``connectwise_sandbox``: ``None`` (lenient), ``"strict"``, a
    ``SandboxRules`` or a dict; parametrise indirectly or override the fixture."""
    return getattr(request, "param", None)


@pytest.fixture
def connectwise_sandbox(
    connectwise_sandbox_server: Sandbox,
    connectwise_sandbox_rules: SandboxRules | str | dict[str, Any] | None,
) -> Iterator[Sandbox]:
    """The session sandbox, reset to its seed state, under ``connectwise_sandbox_rules``."""
    connectwise_sandbox_server.reset()
    if connectwise_sandbox_rules is None:
        yield connectwise_sandbox_server
        return
    starting = connectwise_sandbox_server.rules
    connectwise_sandbox_server.set_rules(connectwise_sandbox_rules)
    try:
        yield connectwise_sandbox_server
    finally:  # a later test using the server directly sees the starting rules
        connectwise_sandbox_server.set_rules(starting)


@pytest.fixture
def connectwise_sandbox_config(connectwise_sandbox_server: Sandbox) -> dict[str, Any]:
    """``app.config`` entries accepting the session sandbox's URL (its port only)."""
    return connectwise_sandbox_server.app_config


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name")
        if tag != "input" or not name or name in self.fields:
            return
        if a.get("type") in ("checkbox", "radio") and "checked" not in a:
            return
        if a.get("type") not in ("submit", "button", "image", "file"):
            self.fields[name] = a.get("value") or ""


def form_fields(html: str) -> dict[str, str]:
    """The ``<input>`` names and values a browser would send from ``html`` (first form's worth:
    hidden CSRF and idempotency tokens included; unchecked boxes and buttons left out)."""
    parser = _Inputs()
    parser.feed(html)
    return parser.fields


def post_form(
    client: Any,
    url: str,
    data: dict[str, Any] | None = None,
    *,
    ticket: int | str | None = None,
    field: str = "connectwise_ticket",
    **kwargs: Any,
) -> Any:
    """GET ``url`` with the Flask test ``client``, then POST its form as a browser would: the
    page's inputs (CSRF token, the ticket field's idempotency token) updated with ``data`` and,
    when given, ``ticket`` in the ticket field ``field`` (``connectwise_ticket`` on Flask-Admin
    views; your form field's name otherwise). Returns the POST's response (``kwargs`` go to
    ``client.post``, e.g. ``follow_redirects=True``)."""
    page = client.get(url)
    assert page.status_code == 200, f"GET {url} answered {page.status_code}"
    body = form_fields(page.get_data(as_text=True)) | {k: str(v) for k, v in (data or {}).items()}
    if ticket is not None:
        body[field] = str(ticket)
    return client.post(url, data=body, **kwargs)
