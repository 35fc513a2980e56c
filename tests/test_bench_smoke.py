"""Each benchmark script runs with tiny sizes, prints its table and writes its JSON.

No timing is asserted: these only prove the scripts work (the figures come from full runs).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(script: str, *args: str, timeout: float = 60) -> str:
    result = subprocess.run(
        [sys.executable, f"bench/{script}", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_search(tmp_path):
    out = run(
        "search.py",
        *("--requests", "20", "--warmup", "5", "--cold", "4", "--latency", "0.005"),
        *("--out", str(tmp_path)),
    )
    assert "warm: search (cached)" in out and "cold: ours − L" in out
    data = json.loads((tmp_path / "search.json").read_text())
    assert data["warm"]["search"]["n"] == 20 and data["cold"]["ours"]["n"] == 4
    assert data["warm"]["ratio_p50"] > 0 and data["machine"]["cpus"]
    # Where the cold time goes (issue 17): requests/urllib3, our client, the app hop, the rest.
    assert "Where the cold search's time over the direct call goes" in out
    assert "requests/urllib3 (session − http.client)" in out
    assert set(data["cold"]["where_p50_ms"]) == {
        "requests/urllib3 over http.client",
        "this project's client code over requests",
        "the app hop and our route (the rest)",
    }
    assert data["cold"]["client_in_process"]["n"] == 4
    assert data["warm"]["target_ratio"] == 1.1 and data["cold"]["target_overhead_p50_ms"] == 2.5


def test_peers_without_the_peers_installed(tmp_path):
    """bench/peers.py measures this client and the bare clients when pyconnectwise and
    connectpyse are missing, and names them (they are never project dependencies)."""
    out = run(
        "peers.py",
        *("--venv", str(tmp_path / "no-venv"), "--calls", "10", "--batch", "5"),
        *("--imports", "1", "--out", str(tmp_path)),
    )
    assert "not measured (not installed): pyconnectwise, connectpyse" in out
    rows = {line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")}
    assert {"flask-connectwise", "requests session", "http.client"} <= rows
    assert not rows & {"pyconnectwise", "connectpyse"}
    data = json.loads((tmp_path / "peers.json").read_text())
    assert data["missing_peers"] == ["pyconnectwise", "connectpyse"]
    ours = data["clients"]["flask-connectwise"]
    assert ours["call"]["n"] == 10 and ours["connections_first_100_calls"] == 1
    assert data["clients"]["http.client"]["overhead_p50_ms"] == 0
    assert data["params"]["conditions"] == 'summary contains "printer" and closedFlag=false'


def test_logchange(tmp_path):
    out = run("logchange.py", "--changes", "2", "--latency", "0.005", "--out", str(tmp_path))
    assert "note + time entry + status" in out
    data = json.loads((tmp_path / "logchange.json").read_text())
    assert data["hours"]["n"] == 2 and data["hours"]["sandbox_calls"] >= 2
    assert data["hours_and_status"]["sandbox_calls"] > data["hours"]["sandbox_calls"]


def test_chaos_under_strict_rules(tmp_path):
    """A short chaos run against the sandbox's strict tenant rules: the tenant's work type and
    role and the named member let every change through, none lost, none twice."""
    out = run(
        "chaos.py",
        *("--changes", "12", "--fault-rate", "0.3", "--rules", "strict", "--timeout", "45"),
        *("--out", str(tmp_path)),
        timeout=90,
    )
    assert "changes delivered: 12 / 12" in out
    data = json.loads((tmp_path / "chaos.json").read_text())
    assert data["rules"] == "strict"
    assert (data["delivered"], data["duplicates_on_sandbox"], data["lost"]) == (12, 0, 0)
    assert sum(data["faults_injected"].values()) > 0


@pytest.mark.browser
def test_economy(tmp_path):
    pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("/usr/bin/chromium is not installed")
    out = run("economy.py", "--searches", "5", "--key-delay", "40", "--out", str(tmp_path))
    assert "TCP connections" in out
    data = json.loads((tmp_path / "economy.json").read_text())
    assert data["browser"]["first"]["sandbox_searches"] >= 1
    assert data["connections"]["sandbox_searches"] == 5
    # "prin" answered completely: typing on to "printer" is refined without ConnectWise; after a
    # truncated "p" it is not.
    for how in ("refine_http", "refine_browser"):
        assert data[how]["prin"]["refinement_calls"] == 0
        assert data[how]["p"]["refinement_calls"] >= 1


def test_load(tmp_path):
    if importlib.util.find_spec("gunicorn") is None:
        pytest.skip("gunicorn is not installed")
    database = (
        os.environ.get("CONNECTWISE_TEST_POSTGRES_URL") or f"sqlite:///{tmp_path / 'load.db'}"
    )
    caches = "simple"
    extra: list[str] = []
    if os.environ.get("CONNECTWISE_TEST_REDIS_URL"):
        caches = "redis"  # one run keeps the smoke test short
        extra = ["--redis-url", os.environ["CONNECTWISE_TEST_REDIS_URL"]]
    out = run(
        "load.py",
        *("--duration", "1.5", "--operators", "3", "--threads", "4", "--latency", "0.005"),
        *("--caches", caches, "--database-url", database, "--out", str(tmp_path), *extra),
    )
    assert "sandbox calls/search" in out and "Load — example_app" in out
    data = json.loads((tmp_path / "load.json").read_text())
    assert data["app"] == "example_app"
    assert [r["cache"] for r in data["runs"]] == caches.split(",")
    for r in data["runs"]:
        assert r["requests"] > 0 and r["rss_mib_peak"]
        # Every operator logged in (a failed login or CSRF token would be an error).
        assert not any(k.startswith(("login", "csrf")) for k in r["error_kinds"]), r
        assert r["search"]["n"] > 0 and r["sandbox_searches"] > 0
        # Each log-change not delivered is listed, and counted among the errors.
        assert len(r["undelivered"]) == sum(
            n for k, n in r["error_kinds"].items() if k.startswith("log_change:")
        )
        assert f"[{r['cache']}] log-changes not delivered: {len(r['undelivered'])} of" in out


def test_load_lists_each_undelivered_change_with_its_failed_steps(capsys):
    """What ``bench/load.py`` prints for a log-change answered 200 but not "delivered" (the
    record is what ``bench/loadgen.py`` keeps of such an answer), and for an HTTP error."""
    from bench.load import print_undelivered
    from bench.loadgen import undelivered_record

    answer = {
        "changeId": "cwlog-4e4d6f5d",
        "ticketId": 12450,
        "state": "retrying",
        "note": {"ok": True, "state": "confirmed", "id": 7},
        "timeEntry": {
            "ok": False,
            "state": "sent",
            "error": "The connection broke before ConnectWise answered",
        },
        "status": {"ok": True, "state": "skipped", "skipped": True},
    }
    records = [
        undelivered_record(200, answer, "fabrikam", 12450, 1.3606),
        undelivered_record(
            500, {"error": "server_error", "message": "Something went wrong"}, "contoso", 3, 0.2
        ),
        undelivered_record(None, {"error": "ReadTimeout"}, "contoso", 4, 30.0),
    ]
    assert records[0]["steps"]["timeEntry"] == {
        "state": "sent",
        "error": "The connection broke before ConnectWise answered",
    }
    print_undelivered("redis", records, 1253)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "[redis] log-changes not delivered: 3 of 1253",
        "  HTTP 200 retrying (fabrikam ticket 12450 cwlog-4e4d6f5d, 1360.6 ms)",
        "    timeEntry: sent: The connection broke before ConnectWise answered",
        "  HTTP 500 server_error (contoso ticket 3, 200 ms)",
        "    Something went wrong",
        "  no answer: ReadTimeout (contoso ticket 4, 30000 ms)",
    ]


@pytest.mark.parametrize("fault,status", [("429", 429), ("500-after-apply", 500)])
def test_chaos_faults_answer_like_connectwise(monkeypatch, fault, status):
    """bench/chaos.py's injected 429/500 carry the sandbox's (real ConnectWise's) generic error
    body, ``ConnectWiseApi`` with ``errors: null``, never an invented code."""
    import requests

    from bench.chaos import ChaosAdapter

    adapter = ChaosAdapter(rate=1.0, seed=1)
    monkeypatch.setattr(adapter, "_pick", lambda: fault)
    monkeypatch.setattr(
        "flask_connectwise.urlpolicy.GuardedAdapter.send", lambda self, request, **kw: None
    )
    request = requests.Request("GET", "http://127.0.0.1:9/v4_6_release/apis/3.0/x").prepare()
    response = adapter.send(request)
    assert response.status_code == status
    body = response.json()
    assert body["code"] == "ConnectWiseApi" and body["errors"] is None and body["message"]


def test_submit(tmp_path):
    """bench/submit.py with a few submits: both kinds timed, the degraded submits within the
    budget, every change on the ticket once after the sandbox recovers."""
    out = run(
        "submit.py",
        *("--submits", "6", "--warmup", "1", "--degraded", "1", "--slow", "3"),
        *("--out", str(tmp_path)),
        timeout=90,
    )
    assert "ratio (target <= 1.2)" in out and "down (503)" in out and "slow (3 s)" in out
    data = json.loads((tmp_path / "submit.json").read_text())
    assert data["normal"]["with_ticket"]["n"] == 6 and data["normal"]["without_ticket"]["n"] == 6
    assert all(p["max_s"] <= data["budget_s"] for p in data["degraded"].values())
    recovery = data["recovery"]
    assert recovery["changes"] == 6 + 1 + 1 + 1  # timed, warmup, down, slow
    assert (recovery["once"], recovery["duplicates"], recovery["lost"]) == (9, 0, 0)


@pytest.mark.parametrize("delivery", ["thread", "rq"])
def test_chaos_delivery_modes(tmp_path, delivery):
    """chaos.py through the thread dispatcher and a real RQ worker subprocess (sandbox-side
    faults): every change once."""
    if delivery == "rq":
        pytest.importorskip("rq")
        if not os.environ.get("CONNECTWISE_TEST_REDIS_URL"):
            pytest.skip("CONNECTWISE_TEST_REDIS_URL is not set")
    out = run(
        "chaos.py",
        *("--delivery", delivery, "--changes", "10", "--fault-rate", "0.3", "--timeout", "60"),
        *("--out", str(tmp_path)),
        timeout=90,
    )
    assert f"delivery: {delivery}" in out and "changes delivered: 10 / 10" in out
    data = json.loads((tmp_path / "chaos.json").read_text())
    assert data["delivery"] == delivery
    assert data["fault_injection"] == ("sandbox" if delivery == "rq" else "http")
    assert (data["delivered"], data["duplicates_on_sandbox"], data["lost"]) == (10, 0, 0)
    assert sum(data["faults_injected"].values()) > 0


def test_tenants_stay_within_the_client_bound(tmp_path):
    out = run(
        "tenants.py", "--tenants", "20,80", "--size", "30", "--out", str(tmp_path), timeout=180
    )
    assert "busiest tenant" in out
    data = json.loads((tmp_path / "tenants.json").read_text())
    assert data["client_cache_size"] == 30
    assert [s["tenants"] for s in data["steps"]] == [20, 80]
    for step in data["steps"]:
        assert step["clients_kept"] <= 30 and step["open_sockets"] <= 30
    assert data["steps"][1]["tenants_searched"] > 30  # more tenants than the bound were served
    # The busiest tenant stays among the recently used: its one connection serves every search.
    assert data["busy"]["connections_opened"] <= 1
