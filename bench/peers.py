"""ConnectWise clients side by side: this client, pyconnectwise, connectpyse, a bare requests
session and bare http.client, against the same sandbox, interleaved.

    python bench/peers.py [--calls 1000] [--batch 25] [--imports 5] [--install]

Every client makes the same call: the ticket search this client sends for ``--query`` (its
conditions, order, page size and fields, read from the sandbox's request log after this
client's first call), answered by the sandbox with no added latency. Each client runs in its
own process (so RSS and import time are its own), driven in rounds: in each round every client
makes ``--batch`` calls, the order rotating from round to round, so a busy moment of the
machine falls on all of them alike. Reported per client: p50/p90 of one call, overhead per
call (p50 minus bare http.client's p50 in the same run), TCP connections the sandbox accepted
during a fresh client's first 100 calls (and per 100 timed calls), RSS after the calls (and
over a bare interpreter), and import time (median of ``--imports`` fresh processes).

The peers are optional and never project dependencies: ``--install`` creates a virtualenv at
``.cache/peers-venv`` (``--venv``) and installs ``pyconnectwise`` and ``connectpyse`` there;
their workers run with that venv's Python. Missing peers are named and left out; this client
and the bare clients are always measured.

Adaptations, so each peer can reach a plain-HTTP loopback sandbox: pyconnectwise builds
``https://`` URLs and discovers the codebase at construction, so its ``_get_url`` is
overridden to ``http://`` with the codebase given; connectpyse takes the API URL as given.
Both otherwise run their own code: pyconnectwise parses the answer into its pydantic models,
connectpyse into its ticket objects (the generator is consumed).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VENV = ROOT / ".cache" / "peers-venv"
PEER_PACKAGES = ("pyconnectwise", "connectpyse")

#: name -> (the module a user of the client imports, whether it needs the peers' venv)
CLIENTS: dict[str, tuple[str, bool]] = {
    "flask-connectwise": ("flask_connectwise.client", False),
    "pyconnectwise": ("pyconnectwise", True),
    "connectpyse": ("connectpyse.service.tickets_api", True),
    "requests session": ("requests", False),
    "http.client": ("http.client", False),
}


# -- worker side (stdlib only at module level: it also runs under the peers' venv) -----------


def _rss_kib() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _make_caller(name: str, cfg: dict[str, Any]) -> Any:
    """A no-argument function making one search call with client ``name``."""
    creds, params, url = cfg["credentials"], cfg["params"], cfg["url"]
    codebase = cfg["codebase"]
    api = f"{url}/{codebase}apis/3.0"
    if name == "flask-connectwise":
        from flask_connectwise.client import ConnectWiseClient

        client = ConnectWiseClient(
            url,
            creds["company_id"],
            creds["public_key"],
            creds["private_key"],
            creds["client_id"],
            codebase=codebase,
        )
        query = cfg["query"]
        return lambda: client.search_tickets(query)
    if name == "pyconnectwise":
        from pyconnectwise import ConnectWiseManageAPIClient

        class Loopback(ConnectWiseManageAPIClient):  # type: ignore[misc]
            def _get_url(self) -> str:
                return api

        pcw = Loopback(
            creds["company_id"],
            url.split("://", 1)[1],
            creds["client_id"],
            creds["public_key"],
            creds["private_key"],
            codebase=codebase,
        )
        return lambda: pcw.service.tickets.get(params=dict(params))
    if name == "connectpyse":
        import base64

        from connectpyse.service import tickets_api

        token = base64.b64encode(
            f"{creds['company_id']}+{creds['public_key']}:{creds['private_key']}".encode()
        ).decode()
        auth = {"Authorization": f"Basic {token}", "clientId": creds["client_id"]}

        def call() -> Any:
            t = tickets_api.TicketsAPI(url=api, auth=auth)
            t.conditions, t.orderBy = params["conditions"], params["orderBy"]
            t.pageSize, t.fields = params["pageSize"], params["fields"]
            return list(t.get_tickets())

        return call
    headers = {
        "Authorization": cfg["authorization"],
        "clientId": creds["client_id"],
        "Accept": "application/vnd.connectwise.com+json; version=2022.1",
    }
    if name == "requests session":
        import requests

        session = requests.Session()
        session.headers.update(headers)
        return lambda: session.get(f"{api}/service/tickets", params=params).json()
    if name == "http.client":
        import http.client
        from urllib.parse import urlencode

        host, port = url.split("://", 1)[1].rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port))
        target = f"/{codebase}apis/3.0/service/tickets?{urlencode(params)}"

        def raw() -> Any:
            conn.request("GET", target, headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"answered {response.status}")
            return json.loads(body)

        return raw
    raise SystemExit(f"unknown client {name!r}")


def worker(name: str, import_only: bool) -> int:
    """Answer the coordinator over stdin/stdout, one JSON line per command."""
    base_rss = _rss_kib()
    started = time.perf_counter()
    importlib.import_module(CLIENTS[name][0])  # the import a user of this client makes
    import_ms = (time.perf_counter() - started) * 1000
    if import_only:
        print(json.dumps({"import_ms": import_ms}), flush=True)
        return 0
    cfg = json.loads(sys.stdin.readline())
    call = _make_caller(name, cfg)
    print(json.dumps({"ready": True, "import_ms": import_ms}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("stop"):
            print(json.dumps({"rss_kib": _rss_kib(), "base_rss_kib": base_rss}), flush=True)
            return 0
        times: list[float] = []
        for _ in range(int(command["calls"])):
            t0 = time.perf_counter()
            answer = call()
            times.append(time.perf_counter() - t0)
        print(json.dumps({"times": times, "results": len(answer)}), flush=True)
    return 0


# -- coordinator side -----------------------------------------------------------------------


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def install(venv: Path) -> None:
    """Create ``venv`` (if missing) and install the peers into it, never into this env."""
    if not venv_python(venv).exists():
        print(f"creating {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print(f"installing {', '.join(PEER_PACKAGES)} into {venv}")
    subprocess.run(
        [str(venv_python(venv)), "-m", "pip", "install", "-q", *PEER_PACKAGES], check=True
    )


def available_peers(venv: Path) -> tuple[list[str], list[str]]:
    """(peers importable with the venv's Python, peers missing)."""
    found, missing = [], []
    py = venv_python(venv)
    for name in PEER_PACKAGES:
        ok = py.exists() and (
            subprocess.run([str(py), "-c", f"import {name}"], capture_output=True).returncode == 0
        )
        (found if ok else missing).append(name)
    return found, missing


class Worker:
    def __init__(self, name: str, python: Path, import_only: bool = False) -> None:
        self.name = name
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [str(python), str(Path(__file__).resolve()), "--worker", name]
        if import_only:
            cmd.append("--import-only")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
        )

    def ask(self, command: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command is not None:
            self.proc.stdin.write(json.dumps(command) + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} worker stopped (exit {self.proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def import_times(clients: list[tuple[str, Path]], rounds: int) -> dict[str, float]:
    """Median import time per client over ``rounds`` fresh processes, interleaved."""
    seen: dict[str, list[float]] = {name: [] for name, _ in clients}
    for r in range(rounds):
        for name, py in clients[r % len(clients) :] + clients[: r % len(clients)]:
            w = Worker(name, py, import_only=True)
            try:
                seen[name].append(w.ask()["import_ms"])
            finally:
                w.close()
    return {name: statistics.median(v) for name, v in seen.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000, help="measured calls per client")
    parser.add_argument("--batch", type=int, default=25, help="calls per client per round")
    parser.add_argument("--imports", type=int, default=5, help="fresh processes per client")
    parser.add_argument("--query", default="printer", help="the searched text")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="the peers' venv")
    parser.add_argument("--install", action="store_true", help="install the peers first")
    parser.add_argument("--out", type=Path, default=None, help="results folder")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--import-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.import_only)

    sys.path.insert(0, str(ROOT))
    from bench.common import machine, summary, table, write_result
    from flask_connectwise.redaction import basic_token
    from flask_connectwise.sandbox import Sandbox

    if args.install:
        install(args.venv)
    found, missing = available_peers(args.venv)
    if missing:
        print(
            f"not measured (not installed): {', '.join(missing)}; "
            "run with --install to put them in "
            f"{args.venv.relative_to(ROOT) if args.venv.is_relative_to(ROOT) else args.venv}"
        )
    here = Path(sys.executable)
    clients = [
        (name, venv_python(args.venv) if needs_venv else here)
        for name, (_, needs_venv) in CLIENTS.items()
        if not needs_venv or name in found
    ]

    load_before = os.getloadavg()
    sandbox = Sandbox().start()
    workers: dict[str, Worker] = {}
    times: dict[str, list[float]] = {name: [] for name, _ in clients}
    connections: dict[str, int] = {}
    try:
        creds = sandbox.credentials
        cfg: dict[str, Any] = {
            "url": sandbox.url,
            "codebase": sandbox.codebase,
            "credentials": creds,
            "query": args.query,
            "authorization": "Basic "
            + basic_token(creds["company_id"], creds["public_key"], creds["private_key"]),
        }
        # This client first: the parameters it sends are what every other client sends.
        ordered = sorted(clients, key=lambda c: c[0] != "flask-connectwise")
        import_at_start: dict[str, float] = {}
        for name, py in ordered:
            w = workers[name] = Worker(name, py)
            if name == "flask-connectwise":
                w.proc.stdin.write(json.dumps({**cfg, "params": {}}) + "\n")  # type: ignore[union-attr]
                w.proc.stdin.flush()  # type: ignore[union-attr]
                import_at_start[name] = w.ask()["import_ms"]
                before, opened = len(sandbox.requests), sandbox.connections_opened
                first = w.ask({"calls": 1})
                connections[name] = sandbox.connections_opened - opened
                calls = [r for r in sandbox.requests[before:] if r.path == "service/tickets"]
                cfg["params"] = dict(calls[-1].query)
                print(
                    f"each call: GET service/tickets {cfg['params']['conditions']!r} "
                    f"({first['results']} tickets)"
                )
            else:
                w.proc.stdin.write(json.dumps(cfg) + "\n")  # type: ignore[union-attr]
                w.proc.stdin.flush()  # type: ignore[union-attr]
                import_at_start[name] = w.ask()["import_ms"]
        # A fresh client's first 100 calls (this client's first included): connections opened
        # per 100 calls, and the warm-up (lazy imports, caches) before anything is timed.
        first100: dict[str, int] = {}
        for name, w in workers.items():
            before = sandbox.connections_opened
            w.ask({"calls": 100 - (1 if name == "flask-connectwise" else 0)})
            first100[name] = sandbox.connections_opened - before + connections.pop(name, 0)
        rounds = max(1, -(-args.calls // args.batch))
        names = list(workers)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                before = sandbox.connections_opened
                answer = workers[name].ask({"calls": args.batch})
                connections[name] = connections.get(name, 0) + sandbox.connections_opened - before
                times[name] += answer["times"]
            print(f"\r  round {r + 1}/{rounds}", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        rss = {name: w.ask({"stop": True}) for name, w in workers.items()}
    finally:
        for w in workers.values():
            w.close()
        sandbox.stop()
    imports = import_times(clients, args.imports)
    load_after = os.getloadavg()

    floor = summary(times["http.client"])["p50_ms"] if "http.client" in times else 0.0
    results: dict[str, Any] = {}
    rows = []
    for name, _ in clients:
        s = summary(times[name])
        per100 = first100[name]
        during = 100.0 * connections[name] / max(1, len(times[name]))
        mib = rss[name]["rss_kib"] / 1024
        over = (rss[name]["rss_kib"] - rss[name]["base_rss_kib"]) / 1024
        results[name] = {
            "call": s,
            "overhead_p50_ms": round(s["p50_ms"] - floor, 3),
            "connections_first_100_calls": per100,
            "connections_per_100_timed_calls": round(during, 1),
            "rss_mib": round(mib, 1),
            "rss_over_bare_interpreter_mib": round(over, 1),
            "import_ms_median": round(imports[name], 1),
        }
        rows.append(
            [
                name,
                f"{s['p50_ms']:.2f} / {s['p90_ms']:.2f}",
                f"{s['p50_ms'] - floor:+.2f}",
                f"{per100} ({during:g})",
                f"{mib:.1f} (+{over:.1f})",
                f"{imports[name]:.0f}",
            ]
        )
    data = {
        "query": args.query,
        "params": cfg["params"],
        "calls_per_client": args.calls,
        "batch": args.batch,
        "missing_peers": missing,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "clients": results,
    }
    path = write_result("peers", data, args.out)
    m = machine()
    print(
        f"\nPeers — {m['cpus']} CPUs, {m['cpu_model']}, Python {m['python']}; "
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    print(
        table(
            rows,
            [
                "client",
                "call p50 / p90 ms",
                "over http.client p50 ms",
                "connections: first 100 calls (per 100 timed)",
                "RSS MiB (over bare python)",
                "import ms",
            ],
        )
    )
    print(
        f"({len(times['http.client'])} calls each, interleaved in rounds of {args.batch}; "
        f"sandbox without added latency; import: median of {args.imports} fresh processes)"
    )
    if missing:
        print(f"missing: {', '.join(missing)} (python bench/peers.py --install)")
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
