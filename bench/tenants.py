"""Many tenants on one worker: memory and open sockets as the number of tenants grows.

    python bench/tenants.py [--tenants 50,500,5000] [--searches-per-tenant 2] [--size 256]

One worker process (this one) serves searches of up to 5,000 tenants, all configured against
one sandbox running in a child process (so the worker's figures are the worker's own). The
searches go through the extension's search service (``cw.search.json``: cache, refinement,
the tenant's client), spread over the active tenants with a Zipf skew (a few busy tenants, a
long tail). After each step (50, 500, then 5,000 active tenants) it prints the worker's RSS,
its established TCP connections to the sandbox, and the clients it keeps
(``CONNECTWISE_CLIENT_CACHE_SIZE``, default 256: flat beyond it). Then the busiest tenant makes
100 searches amid the others' traffic: TCP connections its client opened (target 1).

``--size 100000`` shows the unbounded behaviour (one client and one open socket per tenant).
Tenant creation is cheap: one key, one bulk insert of the credentials rows (each tenant's
secrets encrypted for its own cell, as the store does) and one flag row for all tenants.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    machine,
    open_sockets_to,
    progress,
    progress_done,
    search_queries,
    table,
    write_result,
)

BUSY_SEARCHES = 100
#: Searches of other tenants (Zipf-chosen) between two of the busiest tenant's.
OTHERS_PER_BUSY_SEARCH = 10


def _sandbox_child(conn: Any) -> None:
    from flask_connectwise.sandbox import Sandbox

    sandbox = Sandbox().start()
    conn.send((sandbox.credentials, sandbox.port, search_queries(sandbox, 400)))
    conn.recv()  # until the parent is done
    sandbox.stop()


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def connections_made(client: Any) -> int:
    """TCP connections a client's session has opened (urllib3's count, per pool)."""
    total = 0
    for adapter in {id(a): a for a in client._session.adapters.values()}.values():
        manager = adapter.poolmanager
        total += sum(manager.pools[k].num_connections for k in manager.pools.keys())  # noqa: SIM118
    return total


def create_tenants(app: Any, credentials: dict[str, Any], count: int) -> list[str]:
    """``count`` tenants with credentials for the sandbox, in one bulk insert."""
    import sqlalchemy as sa

    from flask_connectwise.crypto import Cell
    from flask_connectwise.current import state
    from flask_connectwise.models import ALL_TENANTS, CREDENTIALS_TABLE, SECRET_COLUMNS

    names = [f"msp-{i:05d}" for i in range(count)]
    with app.app_context():
        tenants = state(app).tenants
        tenants.set_flag(ALL_TENANTS, True, actor="bench")
        payload = {
            "baseUrl": credentials["base_url"],
            "companyId": credentials["company_id"],
            "publicKey": credentials["public_key"],
            "privateKey": credentials["private_key"],
            "clientId": credentials["client_id"],
        }
        first = tenants.save_credentials(names[0], payload, actor="bench")
        model = tenants.models.Credentials
        table_ = model.__table__
        template = {
            prop.columns[0].name: getattr(first, prop.key) for prop in model.__mapper__.column_attrs
        }
        for column in [c.name for c in table_.primary_key.columns if c.name != "tenant_id"]:
            template.pop(column, None)
        plain = {
            "public_key": credentials["public_key"],
            "private_key": credentials["private_key"],
            "client_id": credentials["client_id"],
        }
        keyring = tenants.keyring
        rows = []
        for name in names[1:]:
            row = dict(template, tenant_id=name)
            for column in SECRET_COLUMNS:
                row[column] = keyring.encrypt(plain[column], Cell(CREDENTIALS_TABLE, column, name))
            rows.append(row)
        for start in range(0, len(rows), 1000):
            tenants.session.execute(sa.insert(table_), rows[start : start + 1000])
        tenants.session.commit()
    return names


def zipf_weights(count: int, s: float = 1.1) -> list[float]:
    return [1 / (rank**s) for rank in range(1, count + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", default="50,500,5000", help="active tenants at each step")
    parser.add_argument("--searches-per-tenant", type=float, default=2.0)
    parser.add_argument("--size", type=int, default=None, help="CONNECTWISE_CLIENT_CACHE_SIZE")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    steps = [int(x) for x in args.tenants.split(",")]

    parent, child = multiprocessing.Pipe()
    sandbox_process = multiprocessing.Process(target=_sandbox_child, args=(child,), daemon=True)
    sandbox_process.start()
    credentials, port, queries = parent.recv()

    from bench.hostapp import make_app
    from flask_connectwise.config import DEFAULTS
    from flask_connectwise.current import state

    size = args.size if args.size is not None else DEFAULTS["CONNECTWISE_CLIENT_CACHE_SIZE"]
    database = Path(tempfile.mkdtemp(prefix="cw-tenants-")) / "host.db"
    config = {
        "CONNECTWISE_CLIENT_CACHE_SIZE": size,
        "CONNECTWISE_LOOPBACK_PORTS": [port],
        "CONNECTWISE_SWEEP_SECONDS": 0,
    }
    no_tenants = SimpleNamespace(credentials=credentials)  # make_app creates none
    app = make_app(f"sqlite:///{database}", no_tenants, tenants=(), config=config)
    started = time.perf_counter()
    names = create_tenants(app, credentials, max(steps))
    created = time.perf_counter() - started
    print(f"{len(names)} tenants created in {created:.1f} s; client cache size {size}")

    rng = random.Random(args.seed)
    cw = state(app)
    rows: list[list[Any]] = []
    results: list[dict[str, Any]] = []
    busy: dict[str, Any] = {}
    baseline_rss = rss_mb()
    with app.app_context():
        search = cw.search
        tenants = cw.tenants
        for step in steps:
            active = names[:step]
            weights = zipf_weights(step)
            count = int(step * args.searches_per_tenant)
            picks = rng.choices(active, weights=weights, k=count)
            t0 = time.perf_counter()
            for i, tenant in enumerate(picks):
                search.json(tenant, rng.choice(queries))
                if i % 500 == 0:
                    progress(f"{step} tenants: {i}/{count} searches")
            elapsed = time.perf_counter() - t0
            progress_done()
            touched = len(set(picks))
            result = {
                "tenants": step,
                "searches": count,
                "tenants_searched": touched,
                "rss_mb": round(rss_mb(), 1),
                "rss_growth_mb": round(rss_mb() - baseline_rss, 1),
                "open_sockets": open_sockets_to(port),
                "clients_kept": len(tenants.cached_tenants()),
                "searches_per_s": round(count / elapsed),
            }
            results.append(result)
            rows.append([result[k] for k in result])

        # The busiest tenant: 100 searches (new texts, not cached) amid everyone's traffic.
        top = names[0]
        clients: set[int] = set()
        opened = 0
        weights = zipf_weights(len(names))
        for i in range(BUSY_SEARCHES):
            client = tenants.client_for(top)  # what this search will use
            clients.add(id(client))
            before = connections_made(client)
            search.json(top, f"{queries[i % len(queries)]} {i}")
            opened += connections_made(client) - before
            for other in rng.choices(names, weights=weights, k=OTHERS_PER_BUSY_SEARCH):
                search.json(other, rng.choice(queries))
        busy = {"searches": BUSY_SEARCHES, "connections_opened": opened, "clients": len(clients)}

    parent.send("stop")
    sandbox_process.join(timeout=10)

    header = ["tenants", "searches", "searched", "RSS MB", "RSS growth", "sockets", "clients"]
    header += ["searches/s"]
    print(table(rows, header))
    print(
        f"busiest tenant: {busy['connections_opened']} TCP connection(s) per "
        f"{busy['searches']} searches among the others' traffic ({busy['clients']} client(s))"
    )
    load = os.getloadavg()
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    path = write_result(
        "tenants",
        {"client_cache_size": size, "steps": results, "busy": busy, "machine_now": machine()},
        args.out,
    )
    print(f"written: {path}")


if __name__ == "__main__":
    main()
