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

``connectwise_sandbox_server`` (session scope) starts one sandbox on a free loopback port and
stops it at the end; ``connectwise_sandbox`` (function scope) hands out that same server after
``reset()`` (seed data, no faults, latency, rate limit or logged requests).
``connectwise_sandbox_config`` is the app config that accepts that sandbox's URL:
``CONNECTWISE_ALLOW_LOOPBACK_HTTP`` with ``CONNECTWISE_LOOPBACK_PORTS`` set to its port.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flask_connectwise.sandbox import Sandbox

__all__ = ["connectwise_sandbox", "connectwise_sandbox_config", "connectwise_sandbox_server"]


@pytest.fixture(scope="session")
def connectwise_sandbox_server() -> Iterator[Sandbox]:
    """One running sandbox for the whole session."""
    sandbox = Sandbox(host="127.0.0.1", port=0).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def connectwise_sandbox(connectwise_sandbox_server: Sandbox) -> Sandbox:
    """The session sandbox, reset to its seed state."""
    connectwise_sandbox_server.reset()
    return connectwise_sandbox_server


@pytest.fixture
def connectwise_sandbox_config(connectwise_sandbox_server: Sandbox) -> dict[str, Any]:
    """``app.config`` entries accepting the session sandbox's URL (its port only)."""
    return connectwise_sandbox_server.app_config
