"""Shared fixtures: canary secrets and the leak scan, databases, unit-test clients, and the composed
host-app fixtures (app, admin_app, db, cw, admin, configured_tenant) over tests/hosts.py."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_connectwise import ConnectWise
from flask_connectwise.client import ConnectWiseClient
from flask_connectwise.retry import RetryPolicy
from flask_connectwise.sandbox import Sandbox
from tests.client_doubles import BASE_URL, CODEBASE, DictCache
from tests.hosts import TENANT_A, dispose, make_host_app
from tests.leaks import Canaries, LeakCatcher

pytest_plugins = ["flask_connectwise.testing", "tests.servers"]


@pytest.fixture(scope="session")
def canaries() -> Canaries:
    return Canaries()


@pytest.fixture(scope="session")
def connectwise_sandbox_server(canaries: Canaries) -> Iterator[Sandbox]:
    """The sandbox, keyed with this session's canary secrets (overrides the plugin's)."""
    sandbox = Sandbox(
        public_key=canaries.public_key,
        private_key=canaries.private_key,
        client_id=canaries.client_id,
    ).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture(autouse=True)
def leak_scan(canaries: Canaries) -> Iterator[None]:
    """docs/security.md's leak scan: no canary secret in any log record or HTTP answer of any test."""
    from flask import request_finished

    catcher = LeakCatcher()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(catcher)
    root.setLevel(logging.DEBUG)
    answers: list[str] = []

    def on_response(sender: Any, response: Any, **extra: Any) -> None:
        if not response.direct_passthrough and not response.is_streamed:
            answers.append(response.get_data(as_text=True))
        answers.append(repr(dict(response.headers)))

    request_finished.connect(on_response)
    try:
        yield
    finally:
        request_finished.disconnect(on_response)
        root.removeHandler(catcher)
        root.setLevel(old_level)
    leaks = [
        (canary, text[:200])
        for text in catcher.texts + answers
        for canary in canaries.find_in(text)
    ]
    assert leaks == [], f"canary secrets leaked: {leaks}"


@pytest.fixture(autouse=True)
def deliveries_end_with_their_test(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A change a test hands to a thread-mode dispatcher is delivered before the next test
    starts, and a background sweep a test started stops with it: either would otherwise write to
    the next test's sandbox or be caught by its ``responses`` (the flaky "writes() == []"
    failures). Waits at most 15 s for the deliveries."""
    from concurrent.futures import Future, wait

    from flask_connectwise import dispatch
    from flask_connectwise.dispatch import ThreadDispatcher

    started: list[Future[Any]] = []
    submit = ThreadDispatcher.submit

    def submit_and_remember(self: ThreadDispatcher, change_id: int) -> Any:
        handle = submit(self, change_id)
        future = getattr(handle, "future", None)
        if future is not None:
            started.append(future)
        return handle

    monkeypatch.setattr(ThreadDispatcher, "submit", submit_and_remember)
    sweeping = set(dispatch._running)
    yield
    wait(started, timeout=15)
    # An app whose background sweep outlives its test delivers its due retries into later tests.
    # (A module-scoped app that needs its sweep across tests must not start it in a test.)
    for dispatcher in set(dispatch._running) - sweeping:
        dispatcher.close(wait=True)


def _service_url(name: str) -> str:
    url = os.environ.get(name)
    if not url:
        if os.environ.get("CONNECTWISE_TEST_REQUIRE_SERVICES"):
            pytest.fail(f"{name} is not set; run the tests with scripts/test.sh")
        pytest.skip(f"{name} is not set (scripts/test.sh starts the server)")
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    base = _service_url("CONNECTWISE_TEST_POSTGRES_URL")
    name = f"cwtest_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield base.rsplit("/", 1)[0] + "/" + name
    # An autovacuum worker may hold the new database for a moment: try again, then leave it
    # (the test command's server is thrown away after the run anyway).
    for attempt in range(10):
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            break
        except sa.exc.DBAPIError:
            time.sleep(0.2 * (attempt + 1))
    admin.dispose()


@pytest.fixture
def redis_url() -> str:
    return _service_url("CONNECTWISE_TEST_REDIS_URL")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'host.db'}"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(canaries: Canaries, sleeps: list[float]) -> Iterator[Any]:
    made: list[ConnectWiseClient] = []

    def make(**overrides: Any) -> ConnectWiseClient:
        options: dict[str, Any] = {
            "base_url": BASE_URL,
            "company_id": "acme",
            "public_key": canaries.public_key,
            "private_key": canaries.private_key,
            "client_id": canaries.client_id,
            "codebase": CODEBASE,
            "codebase_cache": DictCache(),
            "retry": RetryPolicy(max_attempts=4, base=0.1, cap=1.0, deadline=30.0),
            "sleep": sleeps.append,
        }
        options.update(overrides)
        client = ConnectWiseClient(**options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


# -- composed fixtures over the one host app (tests/hosts.py) --------------------------------


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    """The plain host app (no Flask-Admin) on each test database; modules may override it."""
    app = make_host_app(database_url)
    yield app
    dispose(app)


@pytest.fixture
def admin_app(database_url: str) -> Iterator[Flask]:
    """The host app with Flask-Admin on each test database; modules may override it."""
    app = make_host_app(database_url, admin=True)
    yield app
    dispose(app)


@pytest.fixture
def db(app: Flask) -> Any:
    """The host's Flask-SQLAlchemy object."""
    return app.extensions["test_db"]


@pytest.fixture
def cw(app: Flask) -> ConnectWise:
    """The extension as the host set it up."""
    extension: ConnectWise = app.extensions["test_cw"]
    return extension


@pytest.fixture
def admin(admin_app: Flask) -> Any:
    """The host's Flask-Admin."""
    return admin_app.extensions["test_admin"]


@pytest.fixture
def configured_tenant(app: Flask, connectwise_sandbox: Sandbox) -> str:
    """Tenant A, its credentials pointing at the sandbox and its feature flag on."""
    from flask_connectwise.testing import configure_tenant  # a plugin: not imported before pytest

    configure_tenant(app, TENANT_A, connectwise_sandbox)
    return TENANT_A


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium driven by Playwright, one per test module (browser tests)."""
    pytest.importorskip("playwright.sync_api")
    from tests.serving import chromium

    with chromium() as launched:
        yield launched
