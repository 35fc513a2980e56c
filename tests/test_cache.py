"""Search answers are cached per tenant, credentials revision and normalised query, on
SimpleCache and on Redis (shared by every worker)."""

from __future__ import annotations

import json

import pytest

from flask_connectwise.crypto import generate_key
from tests.hosts import TENANT_A, TENANT_B, cw_of, make_host_app
from tests.json_api import configure


@pytest.fixture(params=["simple", pytest.param("redis", marks=pytest.mark.redis)])
def cache_config(request):
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        return {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": url,
            "CACHE_KEY_PREFIX": f"cwtest-{id(request)}-",
        }
    return {"CACHE_TYPE": "SimpleCache"}


@pytest.fixture
def apps(tmp_path, cache_config):
    """Two app instances (two 'workers') on one database and one cache configuration."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    keys = [generate_key("k1")]
    first = make_host_app(url, cache_config=cache_config, keys=keys)
    second = make_host_app(url, cache_config=cache_config, keys=keys)
    yield first, second
    for app in (first, second):
        with app.app_context():
            cw_of(app).search.cache.clear()
            app.extensions["test_db"].engine.dispose()


def searches(sandbox) -> int:
    return sum(1 for r in sandbox.requests if r.path == "service/tickets")


def test_repeated_search_is_served_from_the_cache(apps, connectwise_sandbox):
    app, _ = apps
    api = configure(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    first = api.call("GET", "/tickets/search?q=printer").get_json()
    for query in ("printer", "PRINTER", "  printer "):
        assert api.call("GET", f"/tickets/search?q={query}").get_json() == first
    assert searches(connectwise_sandbox) == 1


def test_tenants_do_not_share_answers(apps, connectwise_sandbox):
    app, _ = apps
    api_a = configure(app, connectwise_sandbox, TENANT_A)
    api_b = configure(app, connectwise_sandbox, TENANT_B)
    connectwise_sandbox.clear_requests()
    api_a.call("GET", "/tickets/search?q=vpn")
    api_b.call("GET", "/tickets/search?q=vpn")
    assert searches(connectwise_sandbox) == 2


def test_new_credentials_invalidate_the_tenants_answers(apps, connectwise_sandbox):
    app, _ = apps
    api = configure(app, connectwise_sandbox)
    api.call("GET", "/tickets/search?q=printer")
    configure(app, connectwise_sandbox)
    connectwise_sandbox.clear_requests()
    api.call("GET", "/tickets/search?q=printer")
    assert searches(connectwise_sandbox) == 1


def test_workers_share_the_cache_only_on_redis(apps, connectwise_sandbox, cache_config):
    first, second = apps
    configure(first, connectwise_sandbox)
    api_second = configure(second, connectwise_sandbox)  # same db row, revision 2 now
    api_first = configure(first, connectwise_sandbox)  # revision 3, seen by both
    connectwise_sandbox.clear_requests()
    api_first.call("GET", "/tickets/search?q=printer")
    api_second.call("GET", "/tickets/search?q=printer")
    shared = cache_config["CACHE_TYPE"] == "RedisCache"
    assert searches(connectwise_sandbox) == (1 if shared else 2)


def test_cached_answers_hold_no_secret(apps, connectwise_sandbox, canaries):
    app, _ = apps
    api = configure(app, connectwise_sandbox)
    api.call("GET", "/tickets/search?q=printer")
    with app.app_context():
        cache = cw_of(app).search.cache
        backend = cache.cache
        if hasattr(backend, "_cache"):
            dump = repr(backend._cache)
        else:
            client = backend._write_client
            dump = json.dumps([repr(client.get(k)) for k in client.keys(f"{backend.key_prefix}*")])
    assert "Printer" in dump or "printer" in dump
    assert canaries.find_in(dump) == []
