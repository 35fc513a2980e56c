"""N worker processes sharing one 429-limited tenant: calls per second observed vs the limit.

    python bench/ratelimit.py [--workers 4] [--limit 10/1] [--seconds 10] [--redis-url URL]

Starts the sandbox with its ``rate_limit`` rule (``N/S``: at most N calls in any S seconds,
else 429 with ``Retry-After``), then ``--workers`` processes that each call the tenant as fast as
their throttle lets them (``flask_connectwise.ratelimit``: shared in Redis with ``--redis-url``,
per process with ``--no-redis``), pausing on 429 as delivery does. Prints (and writes to
bench/results/ratelimit.json) the calls per second observed, the limit and the 429s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_connectwise.ratelimit import SharedThrottle, TenantThrottle
from flask_connectwise.sandbox import Sandbox
from flask_connectwise.sandbox.rules import parse_rate_limit


def worker(url: str, creds: dict[str, str], codebase: str, tenant: str, args: Any, q: Any) -> None:
    import redis
    import requests

    max_requests, per_seconds = parse_rate_limit(args.limit)
    rate = max_requests / per_seconds
    if args.redis_url:
        throttle: Any = SharedThrottle(redis.Redis.from_url(args.redis_url), rate=rate, burst=1)
    else:
        throttle = TenantThrottle(rate=rate, burst=1)
    session = requests.Session()
    session.auth = (f"{creds['company_id']}+{creds['public_key']}", creds["private_key"])
    session.headers.update({"clientId": creds["client_id"]})
    target = f"{url}/{codebase}apis/3.0/service/tickets/12345"
    ok = limited = 0
    times: list[float] = []
    end = time.time() + args.seconds
    while time.time() < end:
        wait = throttle.wait_time(tenant)
        if wait > 0:
            time.sleep(min(wait, max(0.0, end - time.time())))
            continue
        answer = session.get(target, timeout=5)
        times.append(time.time())
        if answer.status_code == 429:
            limited += 1
            throttle.pause(tenant, float(answer.headers.get("Retry-After", "1")))
        else:
            ok += 1
    q.put({"ok": ok, "limited": limited, "times": times})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--limit", default="10/1", help="the sandbox's rate_limit rule, N/S")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/7")
    parser.add_argument("--no-redis", action="store_true", help="per-process buckets")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "ratelimit.json"))
    args = parser.parse_args()
    if args.no_redis:
        args.redis_url = None
    max_requests, per_seconds = parse_rate_limit(args.limit)
    sb = Sandbox(host="127.0.0.1", port=0, rules={"rate_limit": args.limit}).start()
    tenant = f"bench-{uuid.uuid4().hex[:6]}"
    try:
        q: Any = multiprocessing.Queue()
        procs = [
            multiprocessing.Process(
                target=worker, args=(sb.url, dict(sb.credentials), sb.codebase, tenant, args, q)
            )
            for _ in range(args.workers)
        ]
        for p in procs:
            p.start()
        results = [q.get(timeout=args.seconds + 60) for _ in procs]
        for p in procs:
            p.join()
    finally:
        sb.stop()
    times = sorted(t for r in results for t in r["times"])
    span = (times[-1] - times[0]) if len(times) > 1 else args.seconds
    # The busiest window of the sandbox's length: what its limiter judges.
    busiest, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - per_seconds:
            j += 1
        busiest = max(busiest, i - j + 1)
    report = {
        "workers": args.workers,
        "limit": args.limit,
        "shared": bool(args.redis_url),
        "seconds": round(span, 2),
        "calls": len(times),
        "calls_per_second": round(len(times) / span, 2) if span else None,
        "limit_per_second": round(max_requests / per_seconds, 2),
        "busiest_window_calls": busiest,
        "answered_429": sum(r["limited"] for r in results),
        "delivered": sum(r["ok"] for r in results),
    }
    print(json.dumps(report, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
