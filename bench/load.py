"""Load: the example app under gunicorn, PostgreSQL, and Flask-Caching on Redis vs SimpleCache.

    python bench/load.py [--duration 60] [--operators 50] [--caches redis,simple] [--app hostapp]

Serves the example app (``example_app``, through ``bench.example_wsgi:app``; ``--app hostapp``:
the small benchmark host app ``bench.wsgi:app`` instead) with gunicorn, 2 ``gthread`` workers,
on PostgreSQL, once per cache (Redis, then SimpleCache), with the sandbox adding L = 50 ms.
Before each run the fresh database is migrated and seeded here as the example app's demo mode
does (tenants ``contoso`` and ``fabrikam``, their admins and operators, credentials pointing at
the sandbox, flag on). A separate process (``bench/loadgen.py``) runs 50 operators, each a
thread with a keep-alive session that logs in as its tenant's operator (``POST /login``, ``GET
/csrf-token``) and then searches (70 % of them popular queries asked again and again, the rest
never asked before) and, one action in ten, logs a change with hours (``X-CSRFToken``). Prints
requests per second, p50/p99, errors (a log-change is one unless it answers 200 "delivered"),
RSS per worker (from /proc) and sandbox calls per operator search, then each log-change not
delivered with its failed steps and their errors. PostgreSQL: ``--database-url`` or ``$CONNECTWISE_TEST_POSTGRES_URL`` or the
local ``cwtest`` role (a database is created and dropped per run). Redis: ``--redis-url`` or
``$CONNECTWISE_TEST_REDIS_URL``, else a redis-server is started on port 6392 and stopped after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    EXAMPLE_TENANTS,
    ROOT,
    example_tickets,
    loggable_tickets,
    machine,
    prepare_example,
    prepare_host,
    search_queries,
    served,
    table,
    write_result,
)
from flask_connectwise.sandbox import Sandbox

DEFAULT_PG = "postgresql+psycopg2://cwtest:cwtest@127.0.0.1:5432/postgres"
REDIS_PORT = 6392


# -- services ---------------------------------------------------------------------------------


@contextmanager
def database(base_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database (dropped afterwards); SQLite URLs are used as they are."""
    if base_url.startswith("sqlite"):
        yield base_url
        return
    import sqlalchemy as sa

    name = f"cwbench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(base_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def redis_up(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


@contextmanager
def redis_server(url: str | None) -> Iterator[str]:
    """The given Redis, or one started here on port 6392 (and stopped afterwards)."""
    if url:
        yield url
        return
    url = f"redis://127.0.0.1:{REDIS_PORT}/0"
    if redis_up(url):
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed; pass --redis-url or --caches simple")
    pidfile = Path(tempfile.mkdtemp(prefix="cw-redis-")) / "redis.pid"
    subprocess.run(
        [
            binary,
            "--port",
            str(REDIS_PORT),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
            "--pidfile",
            str(pidfile),
        ],
        check=True,
    )
    for _ in range(50):
        if redis_up(url):
            break
        time.sleep(0.1)
    print(f"started redis-server on port {REDIS_PORT}")
    try:
        yield url
    finally:
        try:
            pid = int(pidfile.read_text().strip())
            os.kill(pid, 15)
            print(f"stopped redis-server (pid {pid})")
        except (OSError, ValueError):
            pass


# -- measuring --------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class RssSampler(threading.Thread):
    """Samples the RSS of the gunicorn workers every half second: ``peak`` over the whole run
    (the operators' logins included), ``peak_load`` once ``started`` exists (the load
    generator creates it when the timed load begins, after the logins)."""

    def __init__(self, master: int, started: Path) -> None:
        super().__init__(daemon=True)
        self.master = master
        self.started = started
        self.peak: dict[int, int] = {}
        self.peak_load: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            loading = self.started.exists()
            for pid in children(self.master):
                value = rss_kib(pid)
                if value:
                    self.last[pid] = value
                    self.peak[pid] = max(self.peak.get(pid, 0), value)
                    if loading:
                        self.peak_load[pid] = max(self.peak_load.get(pid, 0), value)


def one_run(
    cache: str,
    cache_url: str,
    base_db: str,
    sandbox: Any,
    args: argparse.Namespace,
    tenants: tuple[str, ...],
    plan_base: dict[str, Any],
) -> dict[str, Any]:
    with database(base_db) as db_url, tempfile.TemporaryDirectory(prefix="cw-load-") as tmp:
        prefix = f"cwbench:{uuid.uuid4().hex[:8]}:"
        plan = dict(plan_base)
        if args.app == "example_app":
            env, plan["logins"] = prepare_example(
                sandbox,
                db_url,
                str(Path(tmp) / "instance"),
                cache=cache_url,
                cache_prefix=prefix,
                password=uuid.uuid4().hex,
            )
            spec, ready = "bench.example_wsgi:app", "/csrf-token"
        else:
            env = prepare_host(
                sandbox, db_url, tenants=tenants, cache=cache_url, cache_prefix=prefix
            )
            spec, ready = "bench.wsgi:app", "/bench/floor"
        env["BENCH_DB_POOL"] = str(args.threads)
        with served(
            env,
            server="gunicorn",
            workers=args.workers,
            threads=args.threads,
            app_spec=spec,
            ready_path=ready,
        ) as (url, proc):
            workers = children(proc.pid)
            idle = {pid: rss_kib(pid) for pid in workers}
            sandbox.set_latency(args.latency)
            sandbox.clear_requests()
            plan["started_file"] = str(Path(tmp) / "started")
            sampler = RssSampler(proc.pid, Path(plan["started_file"]))
            sampler.start()
            plan_file = Path(tmp) / "plan.json"
            plan_file.write_text(json.dumps(plan))
            print(
                f"[{cache}] gunicorn {args.workers} workers × {args.threads} threads at {url}; "
                f"{args.operators} operators for {args.duration:g} s"
            )
            gen = subprocess.run(
                [sys.executable, "-m", "bench.loadgen", "--url", url, "--plan", str(plan_file)],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=subprocess.PIPE,
                text=True,
                check=True,
            )
            sampler.stop.set()
            sampler.join()
            sandbox.set_latency(0.0)
            stats = json.loads(gen.stdout.strip().splitlines()[-1])
            records = sandbox.requests
            upstream_searches = sum(
                1 for r in records if r.method == "GET" and r.path == "service/tickets"
            )
            operator_searches = stats["search"]["n"]
            fresh = stats["searches"].get("fresh", 0)
            stats |= {
                "app": args.app,
                "cache": cache,
                "database": db_url.split(":")[0],
                "workers": args.workers,
                "threads_per_worker": args.threads,
                "rss_mib_idle": {str(p): round(v / 1024, 1) for p, v in idle.items()},
                # Peak during the timed load; and over the whole run, logins included (the
                # example app hashes passwords with scrypt: about 32 MiB per login at once).
                "rss_mib_peak": {str(p): round(v / 1024, 1) for p, v in sampler.peak_load.items()},
                "rss_mib_peak_with_logins": {
                    str(p): round(v / 1024, 1) for p, v in sampler.peak.items()
                },
                "rss_mib_end": {str(p): round(v / 1024, 1) for p, v in sampler.last.items()},
                "sandbox_calls": len(records),
                "sandbox_searches": upstream_searches,
                # Upstream searches beyond one per never-asked query: the repeated queries'
                # cache misses.
                "sandbox_searches_repeated": upstream_searches - fresh,
                "sandbox_connections_opened": sandbox.connections_opened,
                "sandbox_calls_per_operator_search": round(
                    upstream_searches / max(1, operator_searches), 3
                ),
            }
            return stats


def print_undelivered(cache: str, records: list[dict[str, Any]], total: int) -> None:
    """Each log-change not delivered (answered other than 200 "delivered", or not at all):
    which steps failed and why."""
    print(f"[{cache}] log-changes not delivered: {len(records)} of {total}")
    for rec in records:
        answer = f"HTTP {rec['http']}" if rec["http"] else "no answer:"
        head = f"  {answer} {rec.get('state') or rec.get('error') or ''}".rstrip()
        where = f"{rec['tenant']} ticket {rec['ticket']} {rec.get('changeId') or ''}".rstrip()
        print(f"{head} ({where}, {rec['ms']:g} ms){' busy' if rec.get('busy') else ''}")
        if rec.get("message"):
            print(f"    {rec['message']}")
        for name, step in rec.get("steps", {}).items():
            if step.get("state") not in ("confirmed", "skipped"):
                print(f"    {name}: {step.get('state')}: {step.get('error') or '(no error)'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--operators", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=25, help="threads per gunicorn worker")
    parser.add_argument(
        "--app",
        choices=("example_app", "hostapp"),
        default="example_app",
        help="what gunicorn serves: the example app, or the benchmark host app (bench/hostapp.py)",
    )
    parser.add_argument("--tenants", type=int, default=2, help="hostapp only")
    parser.add_argument("--repeat", type=float, default=0.7, help="share of repeated searches")
    parser.add_argument("--popular", type=int, default=50, help="distinct repeated queries")
    parser.add_argument("--log-share", type=float, default=0.1, help="share of log-changes")
    parser.add_argument("--think", type=float, default=0.0, help="mean pause between actions, s")
    parser.add_argument("--latency", type=float, default=0.05, help="sandbox latency L, s")
    parser.add_argument("--caches", default="redis,simple", help="comma-separated: redis, simple")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args(argv)
    caches = [c.strip() for c in args.caches.split(",") if c.strip()]
    base_db = args.database_url or os.environ.get("CONNECTWISE_TEST_POSTGRES_URL") or DEFAULT_PG
    redis_url = args.redis_url or os.environ.get("CONNECTWISE_TEST_REDIS_URL")

    sandbox = Sandbox().start()
    if args.app == "example_app":
        tenants = EXAMPLE_TENANTS
    else:
        tenants = tuple(f"tenant{i}" for i in range(args.tenants))
    queries = search_queries(sandbox, args.popular + 3000)
    plan = {
        "operators": args.operators,
        "duration": args.duration,
        "tenants": list(tenants),
        "popular": queries[: args.popular],
        "fresh": queries[args.popular :],
        "tickets": loggable_tickets(sandbox),
        "repeat": args.repeat,
        "log_share": args.log_share,
        "think": args.think,
        # hostapp: no logins, and the member comes with each change; example_app: each
        # operator logs in and its user's ConnectWise member is used.
        "member": "jdoe" if args.app == "hostapp" else None,
        "tenant_tickets": example_tickets(sandbox) if args.app == "example_app" else {},
    }
    runs: list[dict[str, Any]] = []
    try:
        with redis_server(redis_url if "redis" in caches else "unused") as rurl:
            for cache in caches:
                spec = rurl if cache == "redis" else "simple"
                runs.append(one_run(cache, spec, base_db, sandbox, args, tenants, plan))
    finally:
        sandbox.stop()

    result = {
        "app": args.app,
        "served": "bench.example_wsgi:app (example_app)"
        if args.app == "example_app"
        else "bench.wsgi:app (bench/hostapp.py)",
        "settings": {k: v for k, v in vars(args).items() if k not in ("out",)}
        | {"database": base_db.split(":")[0]},
        "runs": runs,
    }
    path = write_result("load", result, args.out)
    m = machine()
    print(
        f"\nLoad — {args.app}; {m['cpus']} CPUs, {m['cpu_model']}, Python {m['python']}; gunicorn "
        f"{args.workers}×{args.threads} gthread, {base_db.split(':')[0]}, {args.operators} "
        f"operators, {args.duration:g} s, {int(args.repeat * 100)} % repeated searches, "
        f"L = {args.latency * 1000:g} ms"
    )
    rows = []
    for r in runs:
        peak = list(r["rss_mib_peak"].values())
        rows.append(
            [
                r["cache"],
                r["requests_per_second"],
                r["all"]["p50_ms"],
                r["all"]["p99_ms"],
                r["search"]["p50_ms"],
                r["search"]["p99_ms"],
                r["log_change"]["p50_ms"],
                r["log_change"]["p99_ms"],
                r["errors"],
                len(r.get("undelivered", [])),
                " / ".join(f"{v:g}" for v in peak),
                r["sandbox_calls_per_operator_search"],
                r["sandbox_searches_repeated"],
                r["sandbox_connections_opened"],
            ]
        )
    print(
        table(
            rows,
            [
                "cache",
                "req/s",
                "p50 ms",
                "p99 ms",
                "search p50",
                "search p99",
                "log p50",
                "log p99",
                "errors",
                "log-changes not delivered",
                "peak RSS MiB/worker",
                "sandbox calls/search",
                "repeated-query sandbox searches",
                "sandbox conns",
            ],
        )
    )
    for r in runs:
        if r["rss_mib_peak_with_logins"] != r["rss_mib_peak"]:
            login_peak = " / ".join(f"{v:g}" for v in r["rss_mib_peak_with_logins"].values())
            print(f"[{r['cache']}] peak RSS MiB/worker with the logins: {login_peak}")
    for r in runs:
        if r["errors"]:
            print(f"[{r['cache']}] errors: {r['error_kinds']}")
    for r in runs:
        print_undelivered(r["cache"], r.get("undelivered", []), r["log_change"]["n"])
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
