"""flask_connectwise.testing as an integrator uses it: configure_tenant and the request log."""

from __future__ import annotations

from typing import Any

from flask import Flask

from flask_connectwise import ConnectWise
from flask_connectwise.client import ConnectWiseClient
from flask_connectwise.sandbox import RequestLog, Sandbox
from flask_connectwise.testing import configure_tenant
from tests.hosts import TENANT_A, TENANT_B


def test_configure_tenant_stores_the_sandbox_credentials_and_turns_the_flag_on(
    app: Flask, cw: ConnectWise, connectwise_sandbox: Sandbox
) -> None:
    configure_tenant(app, TENANT_A, connectwise_sandbox)
    with app.app_context():
        assert cw.is_enabled(TENANT_A) is True
        assert cw.is_enabled(TENANT_B) is False
        settings = cw.tenants.settings(TENANT_A)
        assert settings is not None
        assert settings.base_url == connectwise_sandbox.credentials["base_url"]
        assert cw.client_for(TENANT_A).get_ticket(12345).id == 12345


def test_configure_tenant_with_the_flag_off_and_through_the_extension(
    app: Flask, cw: ConnectWise, connectwise_sandbox: Sandbox
) -> None:
    with app.app_context():
        configure_tenant(cw, TENANT_B, connectwise_sandbox, flag=False, defaultTimeMinutes=30)
        assert cw.is_enabled(TENANT_B) is False
        settings = cw.tenants.settings(TENANT_B)
        assert settings is not None and settings.default_time_minutes == 30
        configure_tenant(cw, TENANT_B, connectwise_sandbox)
        assert cw.is_enabled(TENANT_B) is True


def test_the_configured_tenant_fixture(app: Flask, cw: ConnectWise, configured_tenant: str) -> None:
    assert configured_tenant == TENANT_A
    with app.app_context():
        assert cw.is_enabled(TENANT_A) is True


def test_the_request_log_filters_and_lists_the_writes(connectwise_sandbox: Sandbox) -> None:
    sandbox = connectwise_sandbox
    assert sandbox.requests == [] and len(sandbox.requests) == 0 and sandbox.writes() == []
    client = ConnectWiseClient(**sandbox.credentials)
    try:
        client.get_ticket(12345)
        client.add_note(12345, "from the plugin test")
        client.search_tickets("printer")
    finally:
        client.close()
    log = sandbox.requests
    assert isinstance(log, RequestLog) and isinstance(log, list)
    assert [r.method for r in log(path="service/tickets/*/notes")] == ["POST"]
    assert [r.path for r in log(method="post")] == ["service/tickets/12345/notes"]
    assert all(r.method == "GET" for r in log(method="GET")) and len(log(method="GET")) >= 2
    assert log(method="GET", path="service/tickets/*/notes") == []
    writes: list[Any] = sandbox.writes()
    assert [(r.method, r.path) for r in writes] == [("POST", "service/tickets/12345/notes")]
    assert writes[0].json["text"] == "from the plugin test"
    assert sandbox.writes(path="time/entries") == []
    sandbox.clear_requests()
    assert sandbox.requests == [] and sandbox.requests() == []
