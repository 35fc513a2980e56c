"""Pytest fixtures that run the ConnectWise sandbox over loopback.

In a host application's ``conftest.py``::

    pytest_plugins = ["flask_connectwise.testing"]

    def test_logs_a_note(connectwise_sandbox):
        app.config.update(connectwise_sandbox.credentials)   # base_url, company_id, keys...
        ...
        assert connectwise_sandbox.notes(12345)[-1]["text"] == "Voice configuration updated"

``connectwise_sandbox_server`` (session scope) starts one sandbox on a free loopback port and
stops it at the end; ``connectwise_sandbox`` (function scope) hands out that same server after
``reset()`` (seed data, no faults, latency, rate limit or logged requests).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flask_connectwise.sandbox import Sandbox

__all__ = ["connectwise_sandbox", "connectwise_sandbox_server"]


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
