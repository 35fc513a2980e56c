"""Log-change latency in sandbox round trips: warm ``POST …/tickets/<id>/log-change``.

    python bench/logchange.py [--changes 30] [--latency 0.05] [--database-url URL]

The sandbox adds L (50 ms) to every call. After one change that discovers the codebase, opens
the connections and caches the board's statuses, each change is timed over HTTP: with hours
(the note and the time entry go out in parallel), and with hours and a status change. The
baseline, interleaved in the same run: one bare round trip to the sandbox (``GET system/info``
with the same latency), so figures are given in units of L and of that measured round trip.
Target: ≤ 1.15 L per change at p50 (issue 17; the floor is one parallel round of writes, 1 L).
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    PREFIX,
    Http,
    machine,
    prepare_host,
    progress,
    progress_done,
    served,
    summary,
    table,
    verdict,
    write_result,
)
from flask_connectwise.sandbox import Sandbox

TENANT = "bench"
TICKET = 12345
STATUSES = (102, 104)  # "In Progress" / "Scheduled" on board 1: open, time entries allowed
TARGET_L = 1.15


def round_trip(upstream: Http, sandbox: Any) -> float:
    creds = sandbox.credentials
    auth = base64.b64encode(
        f"{creds['company_id']}+{creds['public_key']}:{creds['private_key']}".encode()
    ).decode()
    status, _, elapsed = upstream.request(
        "GET",
        f"/{sandbox.codebase}apis/3.0/system/info",
        headers={"Authorization": f"Basic {auth}", "clientId": creds["client_id"]},
    )
    if status != 200:
        raise RuntimeError(f"system/info answered {status}")
    return elapsed


def run(url: str, sandbox: Any, changes: int, latency: float) -> dict[str, Any]:
    http = Http(url)
    upstream = Http(sandbox.url)
    path = PREFIX.format(tenant=TENANT) + f"/tickets/{TICKET}/log-change"

    def post(n: int, status_id: int | None) -> tuple[float, int]:
        body: dict[str, Any] = {
            "noteText": f"Benchmark change {n}: extension 201 → 204",
            "memberIdentifier": "jdoe",
            "hours": 0.25,
        }
        if status_id:
            body["statusId"] = status_id
        before = len(sandbox.requests)
        code, payload, elapsed = http.request("POST", path, body)
        if code != 200 or b'"delivered"' not in payload:
            raise RuntimeError(f"log-change answered {code}: {payload[:300]!r}")
        return elapsed, len(sandbox.requests) - before

    # Warm: discovery, connections (two in parallel), the board's statuses.
    post(-2, STATUSES[0])
    post(-1, STATUSES[1])
    sandbox.set_latency(latency)
    rt: list[float] = []
    plain: list[float] = []
    with_status: list[float] = []
    calls = {"plain": 0, "with_status": 0}
    try:
        for n in range(changes):
            rt.append(round_trip(upstream, sandbox))
            elapsed, c = post(n, None)
            plain.append(elapsed)
            calls["plain"] = c
            elapsed, c = post(n, STATUSES[n % 2])
            with_status.append(elapsed)
            calls["with_status"] = c
            progress(f"log-change: {n + 1}/{changes} pairs")
    finally:
        sandbox.set_latency(0.0)
        progress_done()
        http.close()
        upstream.close()
    rt_p50 = sorted(rt)[len(rt) // 2]

    def units(values: list[float]) -> dict[str, Any]:
        s = summary(values)
        return s | {
            "p50_in_L": round(s["p50_ms"] / (latency * 1000), 2),
            "p99_in_L": round(s["p99_ms"] / (latency * 1000), 2),
            "p50_in_round_trips": round(s["p50_ms"] / (rt_p50 * 1000), 2),
        }

    return {
        "latency_L_ms": latency * 1000,
        "round_trip": summary(rt),
        "hours": units(plain) | {"sandbox_calls": calls["plain"]},
        "hours_and_status": units(with_status) | {"sandbox_calls": calls["with_status"]},
        "target_in_L": TARGET_L,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=30, help="measured changes of each kind")
    parser.add_argument("--latency", type=float, default=0.05, help="L, seconds")
    parser.add_argument("--server", choices=("werkzeug", "gunicorn"), default="werkzeug")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    args = parser.parse_args(argv)

    sandbox = Sandbox().start()
    try:
        env = prepare_host(sandbox, args.database_url, tenants=(TENANT,))
        database = env["BENCH_DATABASE_URL"].split(":")[0]
        print(f"Serving the host app with {args.server} ({database})")
        with served(env, server=args.server, workers=1, threads=8) as (url, _):
            r = run(url, sandbox, args.changes, args.latency)
    finally:
        sandbox.stop()
    result = {"server": args.server, "database": database} | r
    path = write_result("logchange", result, args.out)
    m = machine()
    print(
        f"\nLog-change — {m['cpus']} CPUs, {m['cpu_model']}, {args.server}, {database}, L = {r['latency_L_ms']:g} ms"
    )
    rows = [
        [
            "bare sandbox round trip (baseline)",
            r["round_trip"]["p50_ms"],
            r["round_trip"]["p99_ms"],
            "",
            "",
            1,
            "",
        ],
    ]
    for key, label in (
        ("hours", "note + time entry"),
        ("hours_and_status", "note + time entry + status"),
    ):
        x = r[key]
        rows.append(
            [
                label,
                x["p50_ms"],
                x["p99_ms"],
                f"{x['p50_in_L']:.2f} L / {x['p99_in_L']:.2f} L",
                f"{x['p50_in_round_trips']:.2f}",
                x["sandbox_calls"],
                f"≤ {TARGET_L} L: {verdict(x['p50_in_L'], TARGET_L)} (p50)",
            ]
        )
    print(
        table(
            rows,
            [
                "change",
                "p50 ms",
                "p99 ms",
                "p50 / p99 in L",
                "p50 in round trips",
                "sandbox calls",
                "target",
            ],
        )
    )
    print(f"({r['hours']['n']} changes of each kind, interleaved; written to {path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
