"""flask_connectwise.metrics: real numbers after real actions against the sandbox."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.test import Client

from flask_connectwise.metrics import ConnectWiseMetrics, call_outcome
from tests.hosts import TENANT_A
from tests.json_api import configure


def scrape(
    http: Any, url: str = "/metrics"
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = http.get(url)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    text = answer.get_data(as_text=True)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_real_actions(app, connectwise_sandbox):
    metrics = ConnectWiseMetrics(app)
    app.register_blueprint(metrics.blueprint())
    api = configure(app, connectwise_sandbox)
    http = app.test_client()
    before = scrape(http)
    assert before[("connectwise_outbox_changes", (("state", "delivered"),))] == 0
    assert before[("connectwise_outbox_changes", (("state", "failed"),))] == 0

    for _ in range(2):  # the second search is answered from the cache
        assert api.call("GET", "/tickets/search?q=printer").status_code == 200
    assert api.call("GET", "/tickets/search?q=voice").status_code == 200
    answer = api.call("POST", "/tickets/12345/log-change", {"noteText": "metrics"})
    assert answer.status_code == 200 and answer.get_json()["state"] == "delivered"
    connectwise_sandbox.inject_fault(
        "service/tickets/12345/notes", "status", status=400, method="POST"
    )
    failed = api.call("POST", "/tickets/12345/log-change", {"noteText": "refused"})
    assert failed.get_json()["state"] == "failed"

    after = scrape(http)
    tenant = (("tenant", TENANT_A),)
    assert after[("connectwise_search_cache_hits_total", tenant)] == 1
    assert after[("connectwise_search_cache_misses_total", tenant)] == 2
    assert after[("connectwise_outbox_changes", (("state", "delivered"),))] == 1
    assert after[("connectwise_outbox_changes", (("state", "failed"),))] == 1
    assert after[("connectwise_outbox_changes", (("state", "pending"),))] == 0
    assert after[("connectwise_delivery_latency_seconds_count", ())] == 1
    assert 0 < after[("connectwise_delivery_latency_seconds_sum", ())] < 30
    assert after[("connectwise_delivery_failures_total", (("final", "true"),))] == 1
    ok = after[("connectwise_calls_total", (("outcome", "ok"), ("tenant", TENANT_A)))]
    refused = after[
        ("connectwise_calls_total", (("outcome", "client_error"), ("tenant", TENANT_A)))
    ]
    assert ok >= 4  # two searches, the ticket checks and the note
    assert refused == 1  # the note refused with HTTP 400


def test_metrics_as_wsgi_app_with_own_registry(app, connectwise_sandbox):
    first, second = ConnectWiseMetrics(app), ConnectWiseMetrics(app)
    assert first.registry is not second.registry
    http = Client(DispatcherMiddleware(app.wsgi_app, {"/metrics": first.wsgi_app()}))
    api = configure(app, connectwise_sandbox)
    api.call("GET", "/tickets/search?q=printer")
    seen = scrape(http, "/metrics")
    assert seen[("connectwise_search_cache_misses_total", (("tenant", TENANT_A),))] == 1
    first.close()
    api.call("GET", "/tickets/search?q=voice")
    assert (
        scrape(http, "/metrics")[("connectwise_search_cache_misses_total", (("tenant", TENANT_A),))]
        == 1
    )
    assert second.cache_misses.labels(tenant=TENANT_A)._value.get() == 2


def test_a_scrape_answers_when_the_database_does_not(app, monkeypatch):
    metrics = ConnectWiseMetrics(app)
    outbox = app.extensions["connectwise"].outbox

    def down() -> dict[str, int]:
        raise RuntimeError("database down")

    monkeypatch.setattr(outbox, "counts", down)
    body, _ = metrics.render()
    assert b"connectwise_search_cache_hits_total" in body.replace(b"# TYPE ", b"")
    assert b"connectwise_outbox_changes{" not in body


def test_call_outcomes():
    assert call_outcome(200, None) == "ok"
    assert call_outcome(404, None) == "client_error"
    assert call_outcome(429, None) == "rate_limited"
    assert call_outcome(503, None) == "server_error"
    assert call_outcome(None, "ConnectionError") == "unreachable"


def test_package_imports_without_prometheus(tmp_path):
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "import flask_connectwise, flask_connectwise.extension, flask_connectwise.metrics\n"
        "from flask_connectwise import ConnectWise\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_enabling_metrics_without_prometheus_says_what_to_install(app, monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(RuntimeError, match=r"pip install 'flask-connectwise\[metrics\]'"):
        ConnectWiseMetrics(app)


def test_metrics_need_the_extension_first():
    from flask import Flask

    with pytest.raises(RuntimeError, match=r"cw\.init_app"):
        ConnectWiseMetrics(Flask("bare"))
