"""Per-tenant rate limits shared by every process through Redis (issue 15, item 4).

Two :class:`SharedThrottle` instances with their own Redis clients stand for two worker
processes. The test Redis is used on a database number of its own, each test on tenants of its
own; the outage test runs a private Redis it stops and starts.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from flask_connectwise import ratelimit
from flask_connectwise.current import state
from flask_connectwise.outbox import OutboxWorker
from flask_connectwise.ratelimit import SharedThrottle, TenantThrottle
from tests.hosts import make_host_app
from tests.servers import PrivateRedis

#: The database number of these tests in the test Redis (others use 0).
DB = 7


@pytest.fixture
def rl_url(redis_url: str) -> str:
    return redis_url.rsplit("/", 1)[0] + f"/{DB}"


@pytest.fixture
def clients(rl_url: str) -> Iterator[list[redis.Redis]]:
    made = [redis.Redis.from_url(rl_url) for _ in range(2)]
    yield made
    for client in made:
        client.close()


@pytest.fixture
def tenant(clients: list[redis.Redis]) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    yield name
    clients[0].delete(SharedThrottle.key(name))


def grants_over(throttles: list[Any], tenant: str, seconds: float) -> tuple[int, float]:
    """Hammer ``tenant`` from one thread per throttle for ``seconds``; (grants, elapsed)."""
    counts = [0] * len(throttles)
    start = time.monotonic()

    def hammer(i: int) -> None:
        while time.monotonic() - start < seconds:
            if throttles[i].wait_time(tenant) == 0:
                counts[i] += 1
            else:
                time.sleep(0.002)

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(len(throttles))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts), time.monotonic() - start


@pytest.mark.redis
def test_two_processes_sharing_redis_never_exceed_the_bucket(
    clients: list[redis.Redis], tenant: str
) -> None:
    rate, burst = 20.0, 5
    throttles = [SharedThrottle(c, rate=rate, burst=burst) for c in clients]
    granted, elapsed = grants_over(throttles, tenant, 1.5)
    allowed = burst + rate * elapsed
    assert granted <= allowed + 1, (granted, allowed)
    # ...and the limit is what they get, not a fraction of it.
    assert granted >= burst + rate * 1.5 * 0.8, (granted, allowed)
    assert not any(t.failing for t in throttles)


def test_two_processes_without_redis_each_have_their_own_bucket(tenant: str) -> None:
    """Why the shared throttle exists: per-process buckets together go over the limit."""
    rate, burst = 20.0, 5
    granted, elapsed = grants_over([TenantThrottle(rate, burst) for _ in range(2)], tenant, 1.0)
    assert granted > burst + rate * elapsed + 1


@pytest.mark.redis
def test_a_pause_set_by_one_process_holds_the_other(
    clients: list[redis.Redis], tenant: str
) -> None:
    first, second = (SharedThrottle(c, rate=100, burst=10) for c in clients)
    assert second.wait_time(tenant) == 0
    first.pause(tenant, 0.6)
    wait = second.wait_time(tenant)
    assert 0.4 < wait <= 0.6
    assert second.local.paused_for(tenant) == 0  # it came from Redis, not from this process
    other = f"{tenant}-other"
    try:
        assert second.wait_time(other) == 0  # one tenant's pause is its own
    finally:
        clients[0].delete(SharedThrottle.key(other))
    time.sleep(wait + 0.05)
    assert second.wait_time(tenant) == 0
    # A shorter pause never shortens a longer one.
    first.pause(tenant, 5)
    first.pause(tenant, 0.1)
    assert second.wait_time(tenant) > 4


@pytest.mark.redis
def test_keys_are_namespaced_and_expire(clients: list[redis.Redis], tenant: str) -> None:
    client = clients[0]
    throttle = SharedThrottle(client, rate=100, burst=1)
    key = f"connectwise:rl:{tenant}"
    assert throttle.wait_time(tenant) == 0
    assert client.exists(key)
    # Full again after burst/rate seconds, plus a second: then the key is gone.
    assert 0 < client.pttl(key) <= 1_100
    time.sleep(1.3)
    assert not client.exists(key)
    # A pause keeps the key as long as the pause, no longer.
    throttle.pause(tenant, 10)
    assert 10_000 < client.pttl(key) <= 11_100
    assert [k for k in client.scan_iter(match=f"*{tenant}*")] == [key.encode()]


@pytest.mark.redis
def test_hostile_tenant_names_stay_in_their_key(clients: list[redis.Redis], tenant: str) -> None:
    throttle = SharedThrottle(clients[0], rate=1, burst=1)
    hostile = f"{tenant}*\r\n'\"; redis.call('FLUSHDB') --"
    try:
        assert throttle.wait_time(hostile) == 0
        assert throttle.wait_time(hostile) > 0
        assert throttle.wait_time(tenant) == 0
        assert clients[0].exists(f"connectwise:rl:{hostile}")
    finally:
        clients[0].delete(f"connectwise:rl:{hostile}")


def test_for_app_without_redis_limits_each_process(tmp_path: Any) -> None:
    app = make_host_app(
        f"sqlite:///{tmp_path / 'h.db'}", CONNECTWISE_RATE_LIMIT=3.0, CONNECTWISE_RATE_LIMIT_BURST=4
    )
    throttle = ratelimit.for_app(app)
    assert isinstance(throttle, TenantThrottle)
    assert (throttle.rate, throttle.burst) == (3.0, 4)
    assert ratelimit.for_app(app) is throttle  # one per app and process
    with app.app_context():
        assert ratelimit.for_app() is throttle
        # The worker (and so the thread sweep and the tasks) use it by default.
        assert OutboxWorker(state(app).outbox).throttle is throttle
        app.extensions["test_db"].engine.dispose()


@pytest.mark.redis
def test_for_app_shares_through_the_cache_redis_or_the_configured_url(
    tmp_path: Any, redis_url: str, rl_url: str
) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    cache = {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": rl_url, "CACHE_KEY_PREFIX": "rlt-"}
    through_cache = make_host_app(url, cache_config=cache)
    throttle = ratelimit.for_app(through_cache)
    assert isinstance(throttle, SharedThrottle)
    assert throttle.client.connection_pool.connection_kwargs["db"] == DB
    through_url = make_host_app(url, CONNECTWISE_RATE_LIMIT_REDIS_URL=rl_url)
    shared = ratelimit.for_app(through_url)
    assert isinstance(shared, SharedThrottle)
    assert shared.client.connection_pool.connection_kwargs["db"] == DB
    for app in (through_cache, through_url):
        with app.app_context():
            app.extensions["test_db"].engine.dispose()


@pytest.mark.redis
def test_redis_outage_mid_run_fails_open_with_one_warning(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis.Redis.from_url(private_redis.url, socket_timeout=1, socket_connect_timeout=1)
    throttle = SharedThrottle(client, rate=1, burst=1, retry_after=0.3)
    try:
        assert throttle.wait_time("acme") == 0
        assert throttle.wait_time("acme") > 0  # Redis's bucket: empty
        throttle.pause("contoso", 30)
        caplog.set_level(logging.INFO, logger="flask_connectwise.ratelimit")
        private_redis.stop()
        started = time.monotonic()
        # Fails open to this process's bucket (full: a token now), never raises, never blocks.
        assert throttle.wait_time("acme") == 0
        assert throttle.wait_time("acme") > 0  # ...and still limits this process
        assert throttle.wait_time("contoso") > 25  # the pause was also kept locally
        throttle.pause("fabrikam", 5)
        for _ in range(5):
            throttle.wait_time("northwind")
        time.sleep(0.35)  # Redis is asked again after retry_after: still down
        throttle.wait_time("tailspin")
        assert time.monotonic() - started < 5
        assert throttle.failing
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert "Redis failed" in warnings[0].getMessage()
        assert "127.0.0.1" not in warnings[0].getMessage()
        private_redis.start()
        time.sleep(0.35)
        assert throttle.wait_time("woodgrove") == 0
        assert not throttle.failing
        assert any("answers again" in r.getMessage() for r in caplog.records)
        keys = private_redis.keys()
        assert "connectwise:rl:woodgrove" in keys
    finally:
        client.close()


@pytest.mark.redis
def test_a_peek_takes_no_token(clients: list[redis.Redis], tenant: str) -> None:
    """Before a change the worker only peeks; each call then takes its own token right before
    it is sent (a token taken before the change's database work lets calls bunch up)."""
    shared = [SharedThrottle(c, rate=0.5, burst=1) for c in clients]
    local = TenantThrottle(rate=0.5, burst=1)
    for throttle in (shared[0], local):
        for _ in range(3):
            assert throttle.peek(tenant) == 0  # looked at, never taken
        assert throttle.wait_time(tenant) == 0
        assert throttle.peek(tenant) > 1  # the one token is gone (2 s to refill)
        assert throttle.wait_time(tenant) > 1
    assert shared[1].peek(tenant) > 1  # the other process sees the same empty bucket
    shared[1].pause(f"{tenant}-p", 30)
    try:
        assert shared[0].peek(f"{tenant}-p") > 25  # a pause shows in a peek too
        assert local.peek(tenant) > 1
    finally:
        clients[0].delete(SharedThrottle.key(f"{tenant}-p"))


def test_the_default_bucket_lets_a_log_change_through_at_once_under_the_published_limit(
    tmp_path,
) -> None:
    app = make_host_app(f"sqlite:///{tmp_path / 'd.db'}")
    throttle = ratelimit.from_config(app)
    burst, rate = getattr(throttle, "burst", None), getattr(throttle, "rate", None)
    assert burst == app.config.get("CONNECTWISE_RATE_LIMIT_BURST", 5) == 5
    assert burst >= 4  # ticket read, note, time entry, status: one change never waits
    assert rate is not None and rate + burst <= 1000 / 60  # any second stays under ~1,000/min
    tenant = "burst-default"
    assert [throttle.wait_time(tenant) for _ in range(4)] == [0.0] * 4  # all at once
