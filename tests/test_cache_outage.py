"""A cache is an optimisation: when it fails (Redis down, a broken backend), searches, ticket
reads, log-change and the admin go to ConnectWise or the database, log a rate-limited warning,
and never answer 500."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from flask_connectwise import client as client_module
from flask_connectwise.cachesafe import SafeCache
from tests.client_doubles import DictCache
from tests.hosts import TENANT_A, cw_of, make_host_app
from tests.json_api import configure
from tests.servers import PrivateRedis

CACHE_LOGGER = "flask_connectwise.cache"


class BrokenCache:
    """Every method raises, as a backend whose server is gone does."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def _boom(self, name: str) -> Any:
        self.calls.append(name)
        raise ConnectionError(f"{name}: Error 111 connecting to 127.0.0.1:1. Connection refused.")

    def get(self, key: str) -> Any:
        return self._boom("get")

    def set(self, key: str, value: Any, timeout: int | None = None) -> Any:
        return self._boom("set")

    def add(self, key: str, value: Any, timeout: int | None = None) -> Any:
        return self._boom("add")

    def delete(self, key: str) -> Any:
        return self._boom("delete")

    def clear(self) -> Any:
        return self._boom("clear")


def broken_backend(app: Any, config: Any, args: Any, options: Any) -> BrokenCache:
    """A Flask-Caching backend factory (``CACHE_TYPE``) whose cache always raises."""
    return BrokenCache()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == CACHE_LOGGER and r.levelno == logging.WARNING]


def searches(sandbox: Any) -> int:
    return sum(1 for r in sandbox.requests if r.path == "service/tickets")


# -- the wrapper on its own ---------------------------------------------------------------------


def test_every_cache_error_is_a_miss(caplog):
    caplog.set_level(logging.INFO, logger=CACHE_LOGGER)
    broken = BrokenCache()
    cache = SafeCache(broken, retry_after=0)
    assert cache.get("k") is None
    assert cache.set("k", [1], timeout=5) is False
    assert cache.add("k", [1], timeout=5) is False
    assert cache.delete("k") is False
    assert cache.clear() is False
    assert broken.calls == ["get", "set", "add", "delete", "clear"]
    assert cache.failing
    warned = cache_warnings(caplog)
    assert [r.cw_cache_operation for r in warned] == ["get", "set", "add", "delete", "clear"]
    assert {r.cw_error for r in warned} == {"ConnectionError"}
    # Structured, and without the backend's message (it may name hosts or keys).
    assert all("127.0.0.1" not in r.getMessage() + repr(vars(r)) for r in warned)


def test_warnings_are_rate_limited_per_operation(caplog):
    caplog.set_level(logging.INFO, logger=CACHE_LOGGER)
    clock = Clock()
    cache = SafeCache(BrokenCache(), warn_every=60, retry_after=0, clock=clock)
    for _ in range(500):
        cache.get("k")
        cache.set("k", 1)
        clock.now += 0.01  # 5 s of outage
    assert [r.cw_cache_operation for r in cache_warnings(caplog)] == ["get", "set"]
    clock.now += 60
    cache.get("k")
    last = cache_warnings(caplog)[-1]
    assert last.cw_cache_operation == "get" and last.cw_errors_not_logged == 499


def test_backend_is_left_alone_for_a_moment_after_an_error_then_used_again(caplog):
    caplog.set_level(logging.INFO, logger=CACHE_LOGGER)
    clock = Clock()
    backend = DictCache()
    cache = SafeCache(backend, retry_after=5, clock=clock)
    original_get = backend.get
    backend.get = BrokenCache().get  # type: ignore[method-assign]
    assert cache.get("k") is None
    backend.get = original_get  # type: ignore[method-assign]
    backend.data["k"] = "v"
    clock.now += 4
    assert cache.get("k") is None  # not asked: still within retry_after
    assert cache.set("k2", "x") is False and "k2" not in backend.data
    clock.now += 2
    assert cache.get("k") == "v"
    assert not cache.failing
    assert any(r.getMessage() == "connectwise cache answers again" for r in caplog.records)
    assert cache.set("k2", "x") is True and backend.data["k2"] == "x"


def test_wrap_is_idempotent_and_other_attributes_are_the_backends():
    backend = DictCache()
    cache = SafeCache.wrap(backend)
    assert SafeCache.wrap(cache) is cache
    assert cache.data is backend.data


def test_client_discovers_the_codebase_when_its_cache_fails(
    connectwise_sandbox, canaries, monkeypatch, caplog
):
    """Every read of the shared codebase cache fails: the client discovers and goes on."""
    from flask_connectwise.client import ConnectWiseClient

    monkeypatch.setattr(client_module, "_LOCAL_CODEBASE_TTL", 0.0)
    with ConnectWiseClient(**connectwise_sandbox.credentials, codebase_cache=BrokenCache()) as cw:
        assert cw.get_ticket(12345).id == 12345
        assert cw.get_ticket(12345).id == 12345
    assert cache_warnings(caplog)


def test_every_route_works_with_a_cache_whose_methods_raise(tmp_path, connectwise_sandbox):
    """The host's Flask-Caching ``Cache`` has a backend whose every method raises."""
    app = make_host_app(
        f"sqlite:///{tmp_path / 'h.db'}",
        cache_config={"CACHE_TYPE": f"{__name__}.broken_backend"},
    )
    with app.app_context():
        search = cw_of(app).search
        backend = search.cache.cache
    assert isinstance(backend, BrokenCache)
    search.cache.retry_after = 0  # ask the broken backend every time
    api = configure(app, connectwise_sandbox)
    with app.app_context():
        client = cw_of(app).tenants.client_for(TENANT_A)
    client.forget_local_codebase()  # the shared cache is read on the next call
    before = len(connectwise_sandbox.notes(12345))
    assert api.call("GET", "/tickets/search?q=printer").status_code == 200
    assert api.call("GET", "/tickets/search?q=printer").status_code == 200
    assert api.call("GET", "/tickets/12345").status_code == 200
    answer = api.call("POST", "/tickets/12345/log-change", {"noteText": "cache down"})
    assert answer.status_code == 200 and answer.get_json()["state"] == "delivered"
    assert len(connectwise_sandbox.notes(12345)) == before + 1
    assert {"get", "set"} <= set(backend.calls)
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def test_the_service_wraps_whatever_cache_the_host_gives(tmp_path):
    app = make_host_app(f"sqlite:///{tmp_path / 'h.db'}")
    with app.app_context():
        assert isinstance(cw_of(app).search.cache, SafeCache)
        app.extensions["test_db"].engine.dispose()


# -- the real thing: a private Redis stopped mid-run --------------------------------------------


@pytest.mark.redis
def test_redis_outage_mid_run(
    private_redis: PrivateRedis, database_url, connectwise_sandbox, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger=CACHE_LOGGER)
    # Read the shared codebase cache on every call (in production: a minute into the outage).
    monkeypatch.setattr(client_module, "_LOCAL_CODEBASE_TTL", 0.0)
    app = make_host_app(
        database_url,
        cache_config={
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": private_redis.url,
            "CACHE_KEY_PREFIX": "outage-",
        },
    )
    with app.app_context():
        search = cw_of(app).search
    search.cache.retry_after = 0.2
    api = configure(app, connectwise_sandbox)
    ticket = 12345
    notes_before = len(connectwise_sandbox.notes(ticket))

    def log_change(key: str, text: str) -> dict[str, Any]:
        answer = api.call(
            "POST",
            f"/tickets/{ticket}/log-change",
            {"noteText": text},
            headers={"Idempotency-Key": key},
        )
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return dict(answer.get_json())

    # Redis up: the search answer comes from the cache the second time.
    connectwise_sandbox.clear_requests()
    first = api.call("GET", "/tickets/search?q=printer")
    assert first.status_code == 200
    assert api.call("GET", "/tickets/search?q=printer").get_json() == first.get_json()
    assert searches(connectwise_sandbox) == 1
    assert any(k.startswith("outage-") for k in list(private_redis.keys()))
    assert api.call("GET", f"/tickets/{ticket}").status_code == 200
    before_outage = log_change("before-outage", "before the outage")

    # Redis down: every route still answers, from ConnectWise and the database.
    private_redis.stop()
    connectwise_sandbox.clear_requests()
    for _ in range(3):
        answer = api.call("GET", "/tickets/search?q=printer")
        assert answer.status_code == 200
        assert answer.get_json() == first.get_json()
        assert api.call("GET", "/tickets/search?q=vpn").status_code == 200
        assert api.call("GET", f"/tickets/{ticket}").status_code == 200
    assert searches(connectwise_sandbox) == 6
    during = log_change("during-outage", "during the outage")
    assert during["state"] == "delivered"
    # The operator retries: the same change, not a second one.
    again = log_change("during-outage", "during the outage")
    assert again["changeId"] == during["changeId"] and again.get("replayed") is True
    assert (
        log_change("before-outage", "before the outage")["changeId"] == (before_outage["changeId"])
    )
    # Exactly one note per change in ConnectWise (a note may end with the change's reference).
    texts = [n["text"].split("\n")[0] for n in connectwise_sandbox.notes(ticket)[notes_before:]]
    assert sorted(texts) == ["before the outage", "during the outage"]
    warned = cache_warnings(caplog)
    assert warned and all(r.cw_error == "ConnectionError" for r in warned)
    # Rate-limited: one warning per operation for the whole outage.
    operations = [r.cw_cache_operation for r in warned]
    assert len(operations) == len(set(operations))

    # Redis back: the cache is used again.
    private_redis.start()
    connectwise_sandbox.clear_requests()
    time.sleep(0.3)  # past retry_after
    assert api.call("GET", "/tickets/search?q=printer").status_code == 200
    assert api.call("GET", "/tickets/search?q=printer").status_code == 200
    assert searches(connectwise_sandbox) == 1
    assert not search.cache.failing
    assert any(k.startswith("outage-") for k in list(private_redis.keys()))
    with app.app_context():
        app.extensions["test_db"].engine.dispose()
