"""Many tenants on one process: a bounded, least-recently-used set of per-tenant clients
(``CONNECTWISE_CLIENT_CACHE_SIZE``), evicted clients closed with their connections, while a
busy tenant keeps one client and one connection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask

from bench.common import open_sockets_to
from flask_connectwise.testing import configure_tenant
from tests.hosts import cw_of, make_host_app


@pytest.fixture
def make_app(tmp_path) -> Iterator[Any]:
    made: list[Flask] = []

    def make(size: int, **config: Any) -> Flask:
        app = make_host_app(
            f"sqlite:///{tmp_path / f'host{len(made)}.db'}",
            CONNECTWISE_CLIENT_CACHE_SIZE=size,
            **config,
        )
        made.append(app)
        return app

    yield make
    for app in made:
        with app.app_context():
            for tenant in cw_of(app).tenants.cached_tenants():
                cw_of(app).tenants.forget_client(tenant)
            app.extensions["test_db"].engine.dispose()


def tenant_names(count: int) -> list[str]:
    return [f"msp-{i:03d}" for i in range(count)]


def configured(app: Flask, sandbox: Any, count: int) -> list[str]:
    names = tenant_names(count)
    for name in names:
        configure_tenant(app, name, sandbox)
    return names


def pools(client: Any) -> list[Any]:
    """The urllib3 connection pools a client's session holds (one per host it talked to)."""
    found = []
    # One adapter object is mounted for both schemes.
    for adapter in {id(a): a for a in client._session.adapters.values()}.values():
        manager = adapter.poolmanager
        # urllib3 refuses plain iteration of its pool container.
        found += [manager.pools[key] for key in manager.pools.keys()]  # noqa: SIM118
    return found


def connections_made(client: Any) -> int:
    return sum(pool.num_connections for pool in pools(client))


def sandbox_port(sandbox: Any) -> int:
    port = urlsplit(sandbox.credentials["base_url"]).port
    assert port
    return port


def test_the_size_is_a_setting_with_a_default(make_app):
    app = make_app(7)
    with app.app_context():
        tenants = cw_of(app).tenants
        assert tenants.max_clients == 7
        tenants.config.pop("CONNECTWISE_CLIENT_CACHE_SIZE")
        assert tenants.max_clients == 256
        tenants.config["CONNECTWISE_CLIENT_CACHE_SIZE"] = 0
        assert tenants.max_clients == 1


def test_the_least_recently_used_client_is_evicted_and_its_connections_closed(
    make_app, connectwise_sandbox
):
    app = make_app(2)
    a, b, c = configured(app, connectwise_sandbox, 3)
    with app.app_context():
        tenants = cw_of(app).tenants
        first = tenants.client_for(a)
        first.get_ticket(12345)
        assert pools(first) and connections_made(first) >= 1
        tenants.client_for(b).get_ticket(12345)
        assert tenants.client_for(a) is first  # a used again: b is now the oldest
        tenants.client_for(c).get_ticket(12345)
        assert tenants.cached_tenants() == [a, c]
        evicted = tenants.client_for(b)  # rebuilt; a is the oldest now and goes
        assert tenants.cached_tenants() == [c, b]
        assert pools(first) == []  # closed: its idle connection with it
        assert evicted.get_ticket(12345).id == 12345
        # An evicted tenant's next call rebuilds its client from the database.
        again = tenants.client_for(a)
        assert again is not first and again.get_ticket(12345).id == 12345


def test_a_busy_tenant_keeps_one_client_and_one_connection_among_many(
    make_app, connectwise_sandbox
):
    app = make_app(3)
    busy, *others = configured(app, connectwise_sandbox, 12)
    with app.app_context():
        tenants = cw_of(app).tenants
        client = tenants.client_for(busy)
        for i in range(100):
            assert tenants.client_for(busy) is client
            client.get_ticket(12345)
            tenants.client_for(others[i % len(others)]).get_ticket(12345)
            assert len(tenants.cached_tenants()) <= 3
        assert connections_made(client) == 1


def test_a_credentials_change_still_rebuilds_the_client(make_app, connectwise_sandbox):
    app = make_app(4)
    (a,) = configured(app, connectwise_sandbox, 1)
    with app.app_context():
        tenants = cw_of(app).tenants
        before, revision = tenants.client_and_revision(a)
        before.get_ticket(12345)
        # Another process saved new credentials: only the revision in the database changed.
        model = tenants.models.Credentials
        tenants.session.execute(
            sa.update(model).where(model.tenant_id == a).values(revision=model.revision + 1)
        )
        tenants.session.commit()
        tenants.forget_tenant(a)  # what CONNECTWISE_SETTINGS_CACHE_SECONDS does in time
        after, new_revision = tenants.client_and_revision(a)
        assert new_revision == revision + 1 and after is not before
        assert pools(before) == []
        assert tenants.cached_tenants() == [a]
        assert after.get_ticket(12345).id == 12345
        # And through the extension's own save, as before.
        configure_tenant(app, a, connectwise_sandbox, defaultTimeMinutes=30)
        assert tenants.client_for(a) is not after and pools(after) == []


def test_the_bound_holds_with_many_tenants(make_app, connectwise_sandbox):
    size = 5
    app = make_app(size)
    names = configured(app, connectwise_sandbox, 60)
    port = sandbox_port(connectwise_sandbox)
    baseline = open_sockets_to(port)
    with app.app_context():
        tenants = cw_of(app).tenants
        for _ in range(2):
            for name in names:
                assert tenants.client_for(name).get_ticket(12345).id == 12345
                assert len(tenants.cached_tenants()) <= size
                assert len(tenants._memo) <= size
                assert open_sockets_to(port) - baseline <= size
        assert tenants.cached_tenants() == names[-size:]
