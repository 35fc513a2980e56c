"""Shared pieces of the benchmark scripts: serving the host app, timing, tables, results.

The host app is served in a child process (``python -m bench.wsgi``) by a real threaded WSGI
server, so the client that measures it and the server never share a Python interpreter (and
its GIL). The sandbox stays in the benchmark's own process, where its knobs are at hand.
"""

from __future__ import annotations

import http.client
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
PREFIX = "/api/admin/tenant/{tenant}/connectwise"


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by linear interpolation; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


def summary(values: Sequence[float]) -> dict[str, float]:
    """p50 / p90 / p99 / mean in milliseconds of latencies given in seconds."""
    return {
        "n": len(values),
        "p50_ms": ms(percentile(values, 50)),
        "p90_ms": ms(percentile(values, 90)),
        "p99_ms": ms(percentile(values, 99)),
        "mean_ms": ms(statistics.fmean(values)) if values else float("nan"),
    }


def machine() -> dict[str, Any]:
    """What the figures came from."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_1m_at_start": round(load[0], 2),
    }


def table(rows: Iterable[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain-text table (also valid Markdown)."""
    body = [[str(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in body)) if body else len(h) for i, h in enumerate(header)
    ]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in body
    ]
    return "\n".join(lines)


def verdict(value: float, target: float, *, higher_is_better: bool = False) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "MISSED"


def write_result(name: str, data: dict[str, Any], out: Path | None = None) -> Path:
    """Write ``data`` (with the machine description) to ``<out>/<name>.json``."""
    folder = out or RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=2, default=str))
    return path


def progress(text: str) -> None:
    print(f"\r  {text}", end="", flush=True, file=sys.stderr)


def progress_done() -> None:
    print(file=sys.stderr, flush=True)


class Http:
    """A minimal keep-alive HTTP/1.1 client (``http.client``): little client-side cost, so
    the server's share of each measured request stays large."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        host_port = base_url.split("://", 1)[1].rstrip("/")
        host, _, port = host_port.rpartition(":")
        self.host, self.port, self.timeout = host, int(port), timeout
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, float]:
        """``(status, body, seconds)``; reconnects once if the server closed the connection."""
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        for attempt in (1, 2):
            started = time.perf_counter()
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                response = self.conn.getresponse()
                payload = response.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                if attempt == 2:
                    raise
                continue
            elapsed = time.perf_counter() - started
            if response.getheader("Connection", "").lower() == "close":
                self.conn.close()
            return response.status, payload, elapsed
        raise RuntimeError("unreachable")

    def close(self) -> None:
        self.conn.close()


def sandbox_env(sandbox: Any) -> str:
    return json.dumps(sandbox.credentials)


@contextmanager
def served(
    env: dict[str, str],
    *,
    server: str = "werkzeug",
    workers: int = 1,
    threads: int = 8,
    ready_path: str = "/bench/floor",
    timeout: float = 60.0,
    app_spec: str = "bench.wsgi:app",
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Serve ``bench.wsgi:app`` in a child process; yields ``(base_url, process)``.

    ``server``: ``werkzeug`` (``make_server(threaded=True)``) or ``gunicorn`` (``gthread``
    workers with ``threads`` threads each, keep-alive on). ``app_spec``: what gunicorn serves
    (``bench.example_wsgi:app``: the example app; gunicorn only).
    """
    port = free_port()
    child_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    if server == "gunicorn":
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--keep-alive",
            "75",
            "--log-level",
            "warning",
            app_spec,
        ]
    else:
        cmd = [sys.executable, "-m", "bench.wsgi", "--port", str(port)]
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"the server exited:\n{log.read().decode(errors='replace')}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", ready_path)
                if conn.getresponse().status == 200:
                    conn.close()
                    break
                conn.close()
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start in time")
            time.sleep(0.1)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def search_queries(sandbox: Any, count: int) -> list[str]:
    """``count`` distinct search texts taken from the sandbox's ticket summaries (each one
    finds tickets, and no two share a cache key)."""
    from flask_connectwise.conditions import clean_text

    seen: set[str] = set()
    out: list[str] = []
    summaries = [t["summary"] for t in sandbox.tickets()]
    for length in (4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 18, 20):
        for text in summaries:
            words = text.split()
            for i in range(len(words)):
                fragment = " ".join(words[i:])[:length].strip()
                key = clean_text(" ".join(fragment.split())).casefold()
                if len(key) < 3 or key in seen or not any(c.isalnum() for c in key):
                    continue
                seen.add(key)
                out.append(fragment)
                if len(out) >= count:
                    return out
    # More than the summaries give: numbered fragments (some find nothing; still uncached).
    n = 0
    while len(out) < count:
        out.append(f"{summaries[n % len(summaries)][:6]} {n}")
        n += 1
    return out


def loggable_tickets(sandbox: Any) -> list[int]:
    """Open tickets whose status accepts time entries."""
    blocked: set[int] = set()
    boards = {t["board"]["id"] for t in sandbox.tickets()}
    for board in boards:
        for status in sandbox.board_statuses(board):
            if status.get("timeEntryNotAllowed") or status.get("closedStatus"):
                blocked.add(status["id"])
    return [
        t["id"]
        for t in sandbox.tickets()
        if not t.get("closedFlag") and t["status"]["id"] not in blocked
    ]


def prepare_host(
    sandbox: Any,
    database_url: str | None,
    *,
    tenants: tuple[str, ...] = ("bench",),
    cache: str = "simple",
    cache_prefix: str = "cwbench:",
) -> dict[str, str]:
    """Create the host app's tables and tenants (flag on, credentials pointing at
    ``sandbox``) and return the environment ``bench.wsgi`` needs to serve it."""
    from bench.hostapp import make_app
    from flask_connectwise.crypto import generate_key

    if database_url is None:
        database_url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='cw-bench-')) / 'host.db'}"
    keys = [generate_key("bench")]
    app = make_app(database_url, sandbox, tenants=tenants, keys=keys)
    with app.app_context():
        app.extensions["sqlalchemy"].engine.dispose()
    return {
        "BENCH_DATABASE_URL": database_url,
        "BENCH_KEYS": json.dumps(keys),
        "BENCH_CACHE": cache,
        "BENCH_CACHE_PREFIX": cache_prefix,
    }


#: The example app's tenants (``example_app.demo.TENANTS``) and operators' logins.
EXAMPLE_TENANTS = ("contoso", "fabrikam")


def prepare_example(
    sandbox: Any,
    database_url: str,
    instance_path: str,
    *,
    cache: str = "simple",
    cache_prefix: str = "cwbench:",
    password: str,
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Migrate ``database_url`` and seed it as the example app's demo mode does (tenants,
    admins and operators with ``password``, demo data, both tenants' credentials pointing at
    ``sandbox`` with the demo's tenant settings, flag on), then return the environment
    ``bench.example_wsgi`` needs to serve it and each tenant's operator login
    (``{tenant: {"email", "password"}}``)."""
    import secrets

    from bench.example_wsgi import overrides
    from example_app import create_app, demo
    from example_app.extensions import db
    from flask_connectwise.crypto import generate_key
    from flask_connectwise.extension import state

    keys = generate_key("bench")
    secret = secrets.token_urlsafe(32)
    app = create_app(
        overrides({})
        | {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": secret,
            "CONNECTWISE_ENCRYPTION_KEYS": keys,
            "CACHE_TYPE": "SimpleCache",
        },
        instance_path=instance_path,
    )
    demo.run_migrations(app)
    with app.app_context():
        demo.seed_users(password)
        demo.seed_data()
        demo.configure_tenants(sandbox.credentials, force=True)
        service = state(app).service
        for tenant in EXAMPLE_TENANTS:
            service.set_flag(tenant, True, actor="bench")
        db.session.remove()
        db.engine.dispose()
    logins = {
        u.tenant: {"email": u.email, "password": password}
        for u in demo.USERS
        if u.role == "operator"
    }
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": cache if cache.startswith(("redis://", "rediss://", "unix://")) else "",
        "SECRET_KEY": secret,
        "CONNECTWISE_ENCRYPTION_KEYS": keys,
        "CONNECTWISE_DEMO": "0",
        "EXAMPLE_INSTANCE_PATH": instance_path,
        "BENCH_CACHE_PREFIX": cache_prefix,
    }
    return env, logins


def example_tickets(sandbox: Any) -> dict[str, list[int]]:
    """Per example-app tenant, the loggable tickets a change can be logged on in full: where
    the tenant moves each ticket to a default status (Contoso: Help Desk's "In Progress"),
    only the tickets of the board that status belongs to."""
    from example_app.demo import TENANT_SETTINGS

    board_of = {t["id"]: t["board"]["id"] for t in sandbox.tickets()}
    loggable = loggable_tickets(sandbox)
    out: dict[str, list[int]] = {}
    for tenant in EXAMPLE_TENANTS:
        settings = TENANT_SETTINGS.get(tenant, {})
        status = settings.get("defaultStatusId") if settings.get("autoUpdateStatus") else None
        if status is None:
            out[tenant] = loggable
            continue
        boards = {
            board
            for board in set(board_of.values())
            if any(
                s["id"] == status and not s.get("inactive") for s in sandbox.board_statuses(board)
            )
        }
        out[tenant] = [t for t in loggable if board_of[t] in boards]
    return out


def open_sockets_to(port: int) -> int:
    """This process's established TCP connections whose far end is ``port`` (Linux /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for name in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        path = Path(name)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if fields[3] == "01" and remote_port == port and fields[9] in inodes:
                count += 1
    return count
