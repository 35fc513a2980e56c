"""Shared fixtures: canary secrets, a fresh codebase cache, clients for unit tests."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from flask_connectwise.client import ConnectWiseClient
from flask_connectwise.retry import RetryPolicy

pytest_plugins = ["flask_connectwise.testing", "tests.servers"]

BASE_URL = "https://cw.example.test"
CODEBASE = "v2025_1/"
API = f"{BASE_URL}/{CODEBASE}apis/3.0"


class Canaries:
    """Secrets that must never show up anywhere; unique per test session."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:12]
        self.public_key = f"CANARYpub{tag}"
        self.private_key = f"CANARYpriv{tag}"
        self.client_id = f"CANARYcid{tag}"

    def all(self) -> tuple[str, ...]:
        return (self.public_key, self.private_key, self.client_id)

    def find_in(self, text: str) -> list[str]:
        """The canaries in ``text``, in any letter case (a server may echo them changed)."""
        low = text.lower()
        return [c for c in self.all() if c.lower() in low]


@pytest.fixture(scope="session")
def canaries() -> Canaries:
    return Canaries()


@pytest.fixture(scope="session")
def connectwise_sandbox_server(canaries: Canaries) -> Iterator[Any]:
    """The sandbox, keyed with this session's canary secrets (overrides the plugin's)."""
    from flask_connectwise.sandbox import Sandbox

    sandbox = Sandbox(
        public_key=canaries.public_key,
        private_key=canaries.private_key,
        client_id=canaries.client_id,
    ).start()
    yield sandbox
    sandbox.stop()


class _LeakCatcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        extras = {k: v for k, v in vars(record).items() if k not in ("msg", "args")}
        self.texts.append(f"{message} {extras!r} {record.exc_text or ''}")
        if record.exc_info and record.exc_info[1] is not None:
            self.texts.append(repr(record.exc_info[1]) + str(record.exc_info[1]))


@pytest.fixture(autouse=True)
def leak_scan(canaries: Canaries) -> Iterator[None]:
    """docs/security.md's leak scan: no canary secret in any log record or HTTP answer of any test."""
    from flask import request_finished

    catcher = _LeakCatcher()
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


class DictCache:
    """A codebase cache private to one test."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def set(self, key: str, value: Any, timeout: int | None = None) -> bool:
        self.data[key] = value
        return True


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


# -- a host app using only the public API ------------------------------------------------------

TENANT_A = "tenant-a"
TENANT_B = "tenant-b"


def make_host_app(
    database_url: str,
    *,
    cache_config: dict[str, Any] | None = None,
    keys: list[str] | None = None,
) -> Any:
    """A minimal host app: Flask-SQLAlchemy, Flask-WTF CSRF, a header-based 'login'."""
    from flask import Flask, request
    from flask_caching import Cache
    from flask_sqlalchemy import SQLAlchemy
    from flask_wtf.csrf import CSRFProtect, generate_csrf

    from flask_connectwise import ConnectWise
    from flask_connectwise.crypto import generate_key

    app = Flask("host")
    app.config.update(
        SECRET_KEY="test-secret-key",
        SQLALCHEMY_DATABASE_URI=database_url,
        CONNECTWISE_ENCRYPTION_KEYS=keys or [generate_key("k1")],
        CONNECTWISE_ALLOW_LOOPBACK_HTTP=True,
        CONNECTWISE_TIMEOUT=5.0,
        TESTING=True,
    )
    db = SQLAlchemy()
    db.init_app(app)
    CSRFProtect(app)
    cache = Cache(config=cache_config or {"CACHE_TYPE": "SimpleCache"})
    cache.init_app(app)
    cw = ConnectWise(app, db=db, cache=cache)
    # The test "user" says who they are in headers: X-User-Tenant and X-User-Role.

    @cw.authorize
    def authorize(tenant_id: str, action: str) -> bool:
        if request.headers.get("X-Explode"):
            raise RuntimeError("hook failure")
        role = request.headers.get("X-User-Role", "")
        if request.headers.get("X-User-Tenant") != tenant_id:
            return False
        return role == "admin" or (role == "operator" and action == "use")

    @cw.current_member
    def member() -> str | None:
        return request.headers.get("X-User-Member")

    @app.get("/csrf")
    def csrf() -> dict[str, str]:
        return {"token": generate_csrf()}

    app.extensions["test_db"] = db
    app.extensions["test_cw"] = cw
    with app.app_context():
        db.create_all()
    return app
