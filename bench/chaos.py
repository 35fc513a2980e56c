"""Chaos run of the outbox: N changes, faults on a share of requests, two workers.

    python bench/chaos.py [--changes 1000] [--fault-rate 0.3] [--workers 2] [--database-url URL]
                          [--rules lenient|strict] [--delivery worker|thread|celery|rq]
                          [--redis-url URL]

Queues the changes against the sandbox (over loopback), then runs the workers while a fault
injector at the HTTP layer breaks ``--fault-rate`` of all requests: connection refused and
connect timeouts (never sent), read timeouts and dropped answers after ConnectWise applied the
write, 429 with Retry-After, 500/502 before and after applying, and unreadable answers. Prints
(and writes to bench/results/chaos.json): changes delivered, duplicates found on the sandbox,
changes lost. ``--rules strict`` runs the sandbox under its STRICT tenant rules
(``flask_connectwise.sandbox.rules``); the tenant is configured as a correct configuration is,
with a default work type and role, and every change names a full member (jdoe).

``--delivery`` picks how the changes travel (CONNECTWISE_DELIVERY, flask_connectwise.dispatch):
``worker`` (default) runs ``--workers`` OutboxWorker threads in this process (what
``flask connectwise deliver`` runs); ``thread`` submits every change to the app's dispatcher
(its delivery pool, retries by its sweep); ``celery`` / ``rq`` enqueue every change on the local
Redis (``--redis-url``, default CONNECTWISE_TEST_REDIS_URL) and start a real worker subprocess
(tests/dispatch_host.py) on the same file SQLite, the web process's sweep re-enqueuing due
retries. The HTTP-layer injector patches this process only, so for celery and rq the faults come
from the sandbox's own fault knobs instead (``SandboxChaos``: 429, 500, 502, 503 and a reset
before the write, a dropped answer and a truncated body after it; no hanging timeouts, which
would only make a one-process worker wait).

``--processes N --rate-limit N/S`` (with ``--delivery worker``): N separate worker processes
(what ``flask connectwise deliver`` runs, each its own app) deliver the changes of one tenant
whose sandbox answers 429 past N calls in S seconds; they share one Redis token bucket
(CONNECTWISE_RATE_LIMIT = (N - ``--burst``) / S, one token per call, on ``--redis-url``
database 12). Prints the busiest S-second window of calls in the sandbox's request log against
the limit and the 429s it answered. Faults (``--fault-rate``) come from the sandbox's side.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3.exceptions

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.hostapp import make_app
from flask_connectwise.crypto import generate_key
from flask_connectwise.delivery import reference_line
from flask_connectwise.extension import state
from flask_connectwise.models import DELIVERED, ChangeState
from flask_connectwise.sandbox import Sandbox
from flask_connectwise.sandbox.errors import for_status
from flask_connectwise.sandbox.faults import Fault, FaultQueue, make_fault
from flask_connectwise.sandbox.rules import LENIENT, STRICT, parse_rate_limit
from flask_connectwise.urlpolicy import GuardedAdapter
from flask_connectwise.worker import OutboxWorker, TenantThrottle

ROOT = Path(__file__).resolve().parent.parent
TICKET = 12345
TENANT = "chaos"
MEMBER = "jdoe"
#: The tenant's time defaults (the sandbox's Regular / System Engineer, valid at its boards).
TIME_DEFAULTS = {
    "workType": {"id": 3, "name": "Regular"},
    "workRole": {"id": 11, "name": "System Engineer"},
}
#: ``strict`` is STRICT without ``overlapping_time``: delivery places an entry the tenant
#: refuses as overlapping after the member's latest one, at most a day ahead, and a thousand
#: 15-minute entries of one member sent within seconds (a flood no operator makes) would need
#: 250 hours; every other refusal is on. tests/test_overlapping_time.py covers overlaps.
RULES = {"lenient": LENIENT, "strict": replace(STRICT, overlapping_time=False)}


def connectwise_error(status: int) -> bytes:
    """The body the sandbox (like real ConnectWise, CONNECTWISE_API.md §10) sends for a generic
    error: ``{"code": "ConnectWiseApi", "message": ..., "errors": null}``."""
    return json.dumps(for_status(status).body()).encode()


class ChaosAdapter(GuardedAdapter):
    """Breaks a share of requests, before or after the server handled them."""

    FAULTS = (
        "refused",
        "connect-timeout",
        "read-timeout-after-apply",
        "dropped-after-apply",
        "429",
        "502-before",
        "500-after-apply",
        "invalid-json-after-apply",
    )

    def __init__(self, rate: float, seed: int) -> None:
        super().__init__(pool_maxsize=8)
        self.rate = rate
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.requests = 0

    def _pick(self) -> str | None:
        with self.lock:
            self.requests += 1
            if self.rng.random() >= self.rate:
                return None
            fault = self.rng.choice(self.FAULTS)
            self.injected[fault] += 1
            return fault

    @staticmethod
    def _synthetic(request: Any, status: int, body: bytes, headers: dict[str, str]) -> Any:
        response = requests.Response()
        response.status_code = status
        response._content = body
        response.headers.update(headers)
        response.url = request.url
        response.request = request
        return response

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if "companyinfo" in request.url:
            return super().send(request, *args, **kwargs)
        fault = self._pick()
        if fault == "refused":
            reason = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
            raise requests.exceptions.ConnectionError(
                urllib3.exceptions.MaxRetryError(None, request.url, reason)  # type: ignore[arg-type]
            )
        if fault == "connect-timeout":
            raise requests.exceptions.ConnectTimeout("connect timed out")
        if fault == "429":
            return self._synthetic(
                request,
                429,
                connectwise_error(429),
                {"Retry-After": "0.2", "Content-Type": "application/json"},
            )
        if fault == "502-before":
            return self._synthetic(request, 502, b"Bad Gateway", {"Content-Type": "text/html"})
        response = super().send(request, *args, **kwargs)
        if fault == "read-timeout-after-apply":
            raise requests.exceptions.ReadTimeout("read timed out")
        if fault == "dropped-after-apply":
            raise requests.exceptions.ConnectionError(
                urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError())
            )
        if fault == "500-after-apply":
            return self._synthetic(
                request, 500, connectwise_error(500), {"Content-Type": "application/json"}
            )
        if fault == "invalid-json-after-apply":
            response._content = b'{"id": 1, "trunc'
        return response


class SandboxChaos(FaultQueue):
    """The sandbox's fault queue, answering ``rate`` of all API requests with a random fault
    (server side: reaches a worker in another process). Injected faults still come first."""

    KINDS = (
        ("status", 429),
        ("status", 500),
        ("status", 502),
        ("status", 503),
        ("reset", None),
        ("apply_then_drop", None),
        ("invalid_json", None),
    )

    def __init__(self, rate: float, seed: int) -> None:
        super().__init__()
        self.rate = rate
        self.rng = random.Random(seed)
        self.rng_lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.requests = 0

    def take(self, method: str, path: str) -> Fault | None:
        queued = super().take(method, path)
        if queued is not None or "companyinfo" in path:
            return queued
        with self.rng_lock:
            self.requests += 1
            if self.rng.random() >= self.rate:
                return None
            kind, status = self.rng.choice(self.KINDS)
            self.injected[f"{status or kind}"] += 1
        return make_fault("**", kind, status=status, retry_after=1 if status == 429 else None)


def redis_db(redis_url: str, db: int) -> str:
    """``redis_url`` on database ``db``, flushed (loopback only)."""
    import redis

    parts = urlsplit(redis_url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("--redis-url must be a loopback Redis")
    url = urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))
    client = redis.Redis.from_url(url, socket_timeout=2)
    client.flushdb()
    client.close()
    return url


def queue_worker(mode: str, env: dict[str, str], queue: str, redis_url: str, log: Any) -> Any:
    """A real Celery / RQ worker process on ``queue`` (tests/dispatch_host.py builds its app)."""
    if mode == "celery":
        command = [
            *("-m", "celery", "-A", "tests.dispatch_host:celery_app", "worker"),
            *("--pool", "solo", "--without-gossip", "--without-mingle", "--without-heartbeat"),
            *("-Q", queue, "--loglevel", "WARNING"),
        ]
    else:
        command = [
            *("-m", "rq.cli", "worker", "--url", redis_url),
            *("--worker-class", "rq.SimpleWorker", "--logging_level", "WARNING", queue),
        ]
    return subprocess.Popen(
        [sys.executable, *command], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def process_worker() -> None:
    """One delivery process of ``--processes`` (what ``flask connectwise deliver`` runs): the
    app on the run's database, its throttle from CONNECTWISE_RATE_LIMIT shared in Redis
    (``ratelimit.for_app``), delivering until SIGTERM."""
    import signal

    from flask_connectwise import ratelimit

    env = os.environ
    config = json.loads(env["CW_CHAOS_CONFIG"])
    app = make_app(
        env["CW_CHAOS_DB"],
        None,
        tenants=(TENANT,),
        keys=json.loads(env["CW_CHAOS_KEYS"]),
        create=False,
        config=config,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with app.app_context():
        worker = OutboxWorker(
            state(app).service,
            batch_size=5,
            backoff_base=0.05,
            backoff_cap=0.5,
            throttle=ratelimit.for_app(app),
            worker_id=f"chaos-process-{os.getpid()}",
        )
        worker.run(idle_sleep=0.05, stop=stop)


def busiest_window(times: list[float], seconds: float) -> int:
    """The most calls in any window of ``seconds`` (what the sandbox's limiter judges)."""
    times = sorted(times)
    busiest, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - seconds:
            j += 1
        busiest = max(busiest, i - j + 1)
    return busiest


def busiest_at(times: list[float], seconds: float) -> float:
    """Seconds from the first call to the start of the busiest window."""
    times = sorted(times)
    best, at, j = 0, 0.0, 0
    for i, t in enumerate(times):
        while times[j] <= t - seconds:
            j += 1
        if i - j + 1 > best:
            best, at = i - j + 1, times[j] - times[0]
    return round(at, 2)


def main() -> int:
    if os.environ.get("CW_CHAOS_PROCESS_WORKER"):
        process_worker()
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=None, help="results folder (default: bench/results)")
    parser.add_argument(
        "--rules",
        choices=sorted(RULES),
        default="lenient",
        help="the sandbox's tenant rules (default lenient; strict = every refusal on)",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="give up after this many seconds"
    )
    parser.add_argument(
        "--delivery",
        choices=("worker", "thread", "celery", "rq"),
        default="worker",
        help="how the changes are delivered (default: --workers OutboxWorker threads)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("CONNECTWISE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="celery/rq: the local Redis (broker; database 13/14 is flushed)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=0,
        help="worker: deliver with this many separate worker processes instead of threads",
    )
    parser.add_argument(
        "--rate-limit",
        default=None,
        help="N/S: the sandbox answers 429 past N calls in S seconds; the worker processes "
        "share CONNECTWISE_RATE_LIMIT (N - burst) / S less --margin in Redis (--redis-url, database 12)",
    )
    parser.add_argument("--burst", type=int, default=1, help="CONNECTWISE_RATE_LIMIT_BURST")
    parser.add_argument(
        "--margin",
        type=float,
        default=0.05,
        help="the shared rate is (N - burst) / S less this share (default 0.05)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # retries are expected here; show only errors
    if args.processes and args.delivery != "worker":
        raise SystemExit("--processes goes with --delivery worker")

    workdir = Path(tempfile.mkdtemp(prefix="cw-chaos-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'chaos.db'}"
    rules = RULES[args.rules]
    if args.rate_limit:
        rules = replace(rules, rate_limit=args.rate_limit)
    sandbox = Sandbox(rules=rules).start()
    keys = [generate_key("chaos")]
    queued = args.delivery in ("celery", "rq")
    config: dict[str, Any] = {
        "CONNECTWISE_DELIVERY": args.delivery,
        "CONNECTWISE_SWEEP_SECONDS": 0.5,
        "CONNECTWISE_LOOPBACK_PORTS": [sandbox.port],
        # The injected faults drop an answer only after the sandbox applied the write, so a
        # write in doubt has always landed: no need to wait for a slow server to finish.
        "CONNECTWISE_DOUBT_SECONDS": 0,
    }
    worker_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CW_DISPATCH_DB": database_url,
        "CW_DISPATCH_KEYS": json.dumps(keys),
        "CW_DISPATCH_PORT": str(sandbox.port),
        "CW_DISPATCH_DOUBT_SECONDS": "0",
    }
    limit: tuple[int, float] | None = None
    if args.processes:
        worker_config = {
            "CONNECTWISE_LOOPBACK_PORTS": [sandbox.port],
            "CONNECTWISE_DOUBT_SECONDS": 0,
            "CONNECTWISE_TIMEOUT": 2.0,
        }
        if args.rate_limit:
            limit = parse_rate_limit(args.rate_limit)
            # A bucket lets ``burst`` calls through at once on top of ``rate`` a second, so
            # rate * S + burst stays within the N calls ConnectWise allows in S seconds; the
            # margin absorbs calls that arrive closer together than their tokens were taken.
            worker_config |= {
                "CONNECTWISE_RATE_LIMIT": (limit[0] - args.burst) / limit[1] * (1 - args.margin),
                "CONNECTWISE_RATE_LIMIT_BURST": args.burst,
                "CONNECTWISE_RATE_LIMIT_REDIS_URL": redis_db(args.redis_url, 12),
            }
        else:
            worker_config["CONNECTWISE_RATE_LIMIT"] = 10_000
        worker_env |= {
            "CW_CHAOS_PROCESS_WORKER": "1",
            "CW_CHAOS_DB": database_url,
            "CW_CHAOS_KEYS": json.dumps(keys),
            "CW_CHAOS_CONFIG": json.dumps(worker_config),
        }
    queue = f"cw-chaos-{os.getpid()}"
    if args.delivery == "celery":
        from tests.dispatch_host import make_celery

        broker = redis_db(args.redis_url, 13)
        config["CONNECTWISE_CELERY_APP"] = make_celery(broker, queue)
        worker_env |= {"CW_DISPATCH_BROKER": broker, "CW_DISPATCH_QUEUE": queue}
    elif args.delivery == "rq":
        broker = redis_db(args.redis_url, 14)
        config |= {
            "CONNECTWISE_RQ_QUEUE": queue,
            "CONNECTWISE_RQ_REDIS_URL": broker,
            "CONNECTWISE_RQ_APP": "tests.dispatch_host:create_app",
        }
    app = make_app(database_url, sandbox, tenants=(TENANT,), keys=keys, config=config)
    with app.app_context():
        creds = sandbox.credentials
        state(app).tenants.save_credentials(
            TENANT,
            {
                "baseUrl": creds["base_url"],
                "companyId": creds["company_id"],
                "publicKey": creds["public_key"],
                "privateKey": creds["private_key"],
                "clientId": creds["client_id"],
            }
            | TIME_DEFAULTS,
            actor="bench",
        )
    app.config["CONNECTWISE_TIMEOUT"] = 1.0
    chaos: ChaosAdapter | SandboxChaos
    if queued or args.processes:  # the workers are other processes: faults from the sandbox
        chaos = sandbox.faults = SandboxChaos(args.fault_rate, args.seed)
        print(f"{args.delivery}: faults injected by the sandbox (SandboxChaos), not the HTTP layer")
    else:
        chaos = ChaosAdapter(args.fault_rate, args.seed)
    with app.app_context():
        service = state(app).service
        if isinstance(chaos, ChaosAdapter):
            service.client_for(TENANT).mount("http://", chaos)
        print(
            f"Queuing {args.changes} changes on ticket #{TICKET} ({database_url.split(':')[0]})..."
        )
        references = []
        rows = []
        for n in range(args.changes):
            row, _ = service.record_change(
                TENANT, TICKET, f"Chaos change {n}", member=MEMBER, hours=0.1
            )
            references.append(row.reference)
            rows.append(row)
        service.session.commit()
        ids = [row.id for row in rows]  # known once committed

    started = time.monotonic()
    stop = threading.Event()
    log_file = open(workdir / "worker.log", "w")  # noqa: SIM115 - closed after the run
    process = None
    if queued:
        process = queue_worker(args.delivery, worker_env, queue, broker, log_file)
    processes = [
        subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            cwd=ROOT,
            env=worker_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        for _ in range(args.processes)
    ]
    if args.delivery != "worker":
        dispatcher = state(app).dispatcher
        for change_id in ids:  # what the host's commit does for each change it recorded
            dispatcher.submit(change_id)

    def work(index: int) -> None:
        with app.app_context():
            worker = OutboxWorker(
                state(app).service,
                batch_size=25,
                backoff_base=0.05,
                backoff_cap=0.5,
                throttle=TenantThrottle(rate=10_000, burst=10_000),
                worker_id=f"chaos-worker-{index}",
            )
            worker.run(idle_sleep=0.05, stop=stop)

    workers = args.workers if args.delivery == "worker" and not args.processes else 0
    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    with app.app_context():
        model = state(app).models.ChangeLog
        session = state(app).service.session
        while time.monotonic() - started < args.timeout:
            session.expire_all()
            done = session.query(model).filter(model.state == DELIVERED).count()
            print(
                f"\r  delivered {done}/{args.changes}  requests {chaos.requests}  faults {sum(chaos.injected.values())}",
                end="",
                flush=True,
            )
            failed = session.query(model).filter(model.state == ChangeState.FAILED).count()
            if done + failed == args.changes:  # nothing left to deliver
                break
            time.sleep(0.5)
        print()
        stop.set()
        for thread in threads:
            thread.join(30)
        for proc in [process, *processes]:
            if proc is not None:
                proc.terminate()
                proc.wait(30)
        log_file.close()
        delivered = session.query(model).filter(model.state == DELIVERED).count()
        refused = [
            f"{row.reference}: "
            + "; ".join(
                f"{step} {error}"
                for step, state, error in (
                    ("note", row.note_state, row.note_error),
                    ("time", row.time_state, row.time_error),
                    ("status", row.status_state, row.status_error),
                )
                if state == "failed"
            )
            for row in session.query(model).filter(model.state == ChangeState.FAILED).limit(3)
        ]
    elapsed = time.monotonic() - started

    note_counts: Counter[str] = Counter()
    entry_counts: Counter[str] = Counter()
    markers = {reference_line(r): r for r in references}
    for note in sandbox.notes(TICKET):
        for line in note["text"].splitlines():
            if line in markers:
                note_counts[markers[line]] += 1
    for entry in sandbox.time_entries(TICKET):
        for line in (entry.get("notes") or "").splitlines():
            if line in markers:
                entry_counts[markers[line]] += 1
    duplicates = sum(1 for r in references if note_counts[r] > 1 or entry_counts[r] > 1)
    logged = list(sandbox.requests)
    calls = {
        "requests": len(logged),
        "answered_429": sum(1 for r in logged if r.status == 429),
    }
    if limit is not None:
        calls |= {
            "limit": args.rate_limit,
            "busiest_window": busiest_window([r.started for r in logged], limit[1]),
            "busiest_window_at": busiest_at([r.started for r in logged], limit[1]),
            "busiest_window_sent": busiest_window(
                [r.started for r in logged if r.status != 429], limit[1]
            ),
        }
    lost = sum(1 for r in references if note_counts[r] == 0 or entry_counts[r] == 0)
    sandbox.stop()

    if args.delivery != "worker":
        state(app).dispatcher.close()
    result = {
        "delivery": args.delivery,
        "fault_injection": "sandbox" if queued else "http",
        "changes": args.changes,
        "fault_rate": args.fault_rate,
        "workers": workers if args.delivery == "worker" else 1,
        "rules": args.rules,
        "database": database_url.split(":")[0],
        "requests": chaos.requests,
        "faults_injected": dict(chaos.injected),
        "delivered": delivered,
        "duplicates_on_sandbox": duplicates,
        "lost": lost,
        "seconds": round(elapsed, 1),
        "processes": args.processes,
        "sandbox_calls": calls,
    }
    out = Path(args.out) if args.out else Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "chaos.json").write_text(json.dumps(result, indent=2))
    print(
        f"requests {chaos.requests}, faults injected {sum(chaos.injected.values())} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(chaos.injected.items()))})"
    )
    print(f"{'delivery':>28}: {args.delivery}")
    print(f"{'changes delivered':>28}: {delivered} / {args.changes}")
    print(f"{'duplicates on the sandbox':>28}: {duplicates}")
    print(f"{'changes lost':>28}: {lost}")
    for line in refused:
        print(f"{'refused':>28}: {line}")
    if delivered != args.changes and (process is not None or processes):
        print((workdir / "worker.log").read_text()[-3000:])
    if limit is not None:
        print(
            f"{'worker processes':>28}: {args.processes} sharing CONNECTWISE_RATE_LIMIT "
            f"{(limit[0] - args.burst) / limit[1] * (1 - args.margin):g}/s + burst {args.burst} "
            "in Redis"
        )
        print(
            f"{'busiest ' + f'{limit[1]:g}' + '-s window':>28}: {calls['busiest_window']} calls "
            f"(limit {limit[0]}), {calls['busiest_window_sent']} not answered 429"
        )
        print(f"{'answered 429':>28}: {calls['answered_429']} of {calls['requests']} calls")
    print(f"{'time':>28}: {elapsed:.1f} s")
    return 0 if (delivered, duplicates, lost) == (args.changes, 0, 0) else 1


if __name__ == "__main__":
    raise SystemExit(main())
