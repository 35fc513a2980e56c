"""The load generator of ``bench/load.py``, run in its own process.

    python -m bench.loadgen --url URL --plan plan.json

Each simulated operator is a thread with its own keep-alive ``requests.Session``. When the plan
has ``logins`` (the example app: ``{tenant: {"email", "password"}}``), each operator first logs
in (``POST /login`` with JSON, then ``GET /csrf-token``; the token goes in ``X-CSRFToken`` on
every log-change), and the clock starts once all are logged in. Then, in a loop until the
duration is over: with probability ``log_share`` it logs a change (with hours) on a random
loggable ticket (of its tenant's ``tenant_tickets`` when the plan has them), else it searches:
a popular query (``repeat`` of the searches, asked again and again by everyone) or a query
nobody asked before. Progress goes to stderr; the figures (latencies per kind, errors) go to
stdout as one JSON object. A log-change is an error unless it answers 200 with the state
"delivered"; each one answering 200 otherwise is listed under ``undelivered`` with every step's
state and error.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PREFIX, summary


def log_in(
    session: requests.Session, url: str, login: dict[str, str], errs: Counter[str]
) -> tuple[bool, dict[str, str]]:
    """Log ``session`` in; ``(ok, headers for state-changing requests)``."""
    try:
        r = session.post(f"{url}/login", json=login, timeout=60)
        if r.status_code != 200:
            errs[f"login:{r.status_code}"] += 1
            return False, {}
        r = session.get(f"{url}/csrf-token", timeout=30)
        if r.status_code != 200 or not r.text.strip():
            errs[f"csrf-token:{r.status_code}"] += 1
            return False, {}
    except requests.RequestException as exc:
        errs[f"login:{type(exc).__name__}"] += 1
        return False, {}
    return True, {"X-CSRFToken": r.text.strip()}


def undelivered_record(
    http_status: int | None, answer: dict[str, Any], tenant: str, ticket: int, seconds: float
) -> dict[str, Any]:
    """What a log-change answer that is not "delivered" says: the change's state and, per step
    (note, time entry, status), its state and ConnectWise's error; for an HTTP error, its
    ``error`` and ``message``; with no answer (``http_status`` None), ``error`` is what
    ``requests`` raised."""
    steps = {}
    for name in ("note", "timeEntry", "status"):
        step = answer.get(name)
        if isinstance(step, dict):
            steps[name] = {"state": step.get("state"), "error": step.get("error")}
    record: dict[str, Any] = {
        "http": http_status,
        "tenant": tenant,
        "ticket": ticket,
        "changeId": answer.get("changeId"),
        "state": answer.get("state"),
        "ms": round(seconds * 1000, 1),
        "steps": steps,
    }
    if answer.get("busy"):
        record["busy"] = True
    if http_status != 200:
        record["error"] = answer.get("error")
        record["message"] = answer.get("message")
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--plan", type=Path, required=True)
    args = parser.parse_args(argv)
    plan = json.loads(args.plan.read_text())
    operators: int = plan["operators"]
    duration: float = plan["duration"]
    tenants: list[str] = plan["tenants"]
    popular: list[str] = plan["popular"]
    fresh: list[str] = plan["fresh"]
    tickets: list[int] = plan["tickets"]
    repeat: float = plan["repeat"]
    log_share: float = plan["log_share"]
    think: float = plan["think"]
    logins: dict[str, dict[str, str]] = plan.get("logins") or {}
    member: str | None = plan.get("member")
    tenant_tickets: dict[str, list[int]] = plan.get("tenant_tickets") or {}

    counter = itertools.count()
    lock = threading.Lock()
    latencies: dict[str, list[float]] = {"search": [], "log_change": []}
    errors: Counter[str] = Counter()
    undelivered: list[dict[str, object]] = []
    searches = Counter[str]()
    logged_in = threading.Semaphore(0)
    go = threading.Event()
    clock = {"start": 0.0, "end": 0.0}

    def fresh_query() -> str:
        k = next(counter)
        base = fresh[k % len(fresh)]
        return base if k < len(fresh) else f"{base} {k}"

    def operator(index: int) -> None:
        rng = random.Random(index)
        tenant = tenants[index % len(tenants)]
        prefix = args.url + PREFIX.format(tenant=tenant)
        mine_tickets = tenant_tickets.get(tenant) or tickets
        session = requests.Session()
        session.trust_env = False
        mine: dict[str, list[float]] = {"search": [], "log_change": []}
        mine_undelivered: list[dict[str, object]] = []
        errs: Counter[str] = Counter()
        n_search = Counter[str]()
        headers: dict[str, str] = {}
        ready = True
        if tenant in logins:
            ready, headers = log_in(session, args.url, logins[tenant], errs)
        logged_in.release()
        go.wait()
        start, end = clock["start"], clock["end"]
        while time.monotonic() < start:
            time.sleep(0.01)
        n = 0
        while ready and time.monotonic() < end:
            n += 1
            if rng.random() < log_share:
                kind = "log_change"
                ticket = rng.choice(mine_tickets)
                t0 = time.perf_counter()
                try:
                    r = session.post(
                        f"{prefix}/tickets/{ticket}/log-change",
                        json={"noteText": f"Load test: operator {index} change {n}", "hours": 0.25}
                        | ({"memberIdentifier": member} if member else {}),
                        headers=headers,
                        timeout=30,
                    )
                    try:
                        answer = r.json()
                    except ValueError:
                        answer = {}
                    if not isinstance(answer, dict):
                        answer = {}
                    ok = r.status_code == 200 and answer.get("state") == "delivered"
                    code = "" if ok else f"{r.status_code} {answer.get('state') or ''}".strip()
                    if not ok:
                        mine_undelivered.append(
                            undelivered_record(
                                r.status_code, answer, tenant, ticket, time.perf_counter() - t0
                            )
                        )
                except requests.RequestException as exc:
                    ok, code = False, type(exc).__name__
                    mine_undelivered.append(
                        undelivered_record(
                            None, {"error": code}, tenant, ticket, time.perf_counter() - t0
                        )
                    )
            else:
                kind = "search"
                repeated = rng.random() < repeat
                q = rng.choice(popular) if repeated else fresh_query()
                n_search["repeated" if repeated else "fresh"] += 1
                t0 = time.perf_counter()
                try:
                    r = session.get(f"{prefix}/tickets/search?q={quote(q)}", timeout=30)
                    ok = r.status_code == 200
                    code = str(r.status_code)
                except requests.RequestException as exc:
                    ok, code = False, type(exc).__name__
            mine[kind].append(time.perf_counter() - t0)
            if not ok:
                errs[f"{kind}:{code or 'not delivered'}"] += 1
            if think:
                time.sleep(rng.uniform(0, 2 * think))
        session.close()
        with lock:
            for key, values in mine.items():
                latencies[key].extend(values)
            errors.update(errs)
            searches.update(n_search)
            undelivered.extend(mine_undelivered)

    threads = [threading.Thread(target=operator, args=(i,), daemon=True) for i in range(operators)]
    for thread in threads:
        thread.start()
    for _ in threads:
        logged_in.acquire()
    clock["start"] = time.monotonic() + 0.5
    clock["end"] = clock["start"] + duration
    go.set()
    if plan.get("started_file"):
        Path(plan["started_file"]).touch()  # tells bench/load.py the timed load has begun
    start = clock["start"]
    while any(t.is_alive() for t in threads):
        now = time.monotonic()
        if now > start:
            print(
                f"\r  load: {min(now - start, duration):5.1f}/{duration:g} s",
                end="",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(1.0)
    print(file=sys.stderr, flush=True)
    everything = latencies["search"] + latencies["log_change"]
    print(
        json.dumps(
            {
                "seconds": duration,
                "requests": len(everything),
                "requests_per_second": round(len(everything) / duration, 1),
                "all": summary(everything),
                "search": summary(latencies["search"]),
                "log_change": summary(latencies["log_change"]),
                "searches": dict(searches),
                "errors": sum(errors.values()),
                "error_kinds": dict(errors),
                "undelivered": undelivered,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
