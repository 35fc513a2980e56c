"""Prometheus metrics for operations (the optional extra ``flask-connectwise[metrics]``).

``metrics = ConnectWiseMetrics(app)`` after ``cw.init_app(app, ...)``, then mount it one of two
ways: ``app.register_blueprint(metrics.blueprint())`` (``GET /metrics`` on the app, protect it
as the host protects its other internal routes) or, outside Flask's routing,
``DispatcherMiddleware(app.wsgi_app, {"/metrics": metrics.wsgi_app()})``.

Each :class:`ConnectWiseMetrics` has its own ``prometheus_client.CollectorRegistry`` (``registry``,
or pass one in), so several apps in one process (tests) never share counters:

- ``connectwise_outbox_changes{state}``: changes per outbox state, counted at scrape time.
- ``connectwise_delivery_latency_seconds``: from a change being recorded to every step having
  reached ConnectWise (histogram).
- ``connectwise_delivery_failures_total{final}``: failed delivery attempts (``final="true"``:
  the change needs attention).
- ``connectwise_calls_total{tenant, outcome}``: HTTP calls to ConnectWise by outcome (``ok``,
  ``client_error``, ``rate_limited``, ``server_error``, ``unreachable``).
- ``connectwise_search_cache_hits_total{tenant}`` / ``..._misses_total{tenant}``: ticket
  searches answered from the cache or from ConnectWise (hit ratio = hits / (hits + misses)).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, Response

from .current import EXTENSION_KEY
from .models import ChangeState
from .signals import change_failed, change_logged, connectwise_called, search_answered

log = logging.getLogger("flask_connectwise")

#: Buckets of the delivery latency, seconds: inline deliveries take well under a second,
#: retries minutes.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

_MISSING = (
    "flask-connectwise metrics need the prometheus-client package: "
    "pip install 'flask-connectwise[metrics]'"
)


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise RuntimeError(_MISSING) from None
    return prometheus_client


def _gauge_family() -> Any:
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily


def call_outcome(status: int | None, error: str | None) -> str:
    """The ``outcome`` label of one ConnectWise call."""
    if status is None:
        return "unreachable"
    if 200 <= status < 400:
        return "ok"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    return "client_error"


class _OutboxCollector:
    """``connectwise_outbox_changes{state}``, read from the outbox table at each scrape."""

    def __init__(self, app: Flask, gauge_family: Any) -> None:
        self.app = app
        self._family = gauge_family

    def collect(self) -> Iterator[Any]:
        family = self._family(
            "connectwise_outbox_changes", "Changes per outbox state", labels=["state"]
        )
        try:
            with self.app.app_context():
                counts = self.app.extensions[EXTENSION_KEY].outbox.counts()
        except Exception as exc:  # a scrape must answer even when the database does not
            log.warning("connectwise metrics: outbox depth unavailable: %s", type(exc).__name__)
            return
        for name in ChangeState.ALL:
            family.add_metric([name], counts.get(name, 0))
        yield family


class ConnectWiseMetrics:
    """The extension's Prometheus metrics for one app (see the module's docstring)."""

    def __init__(self, app: Flask, *, registry: Any = None) -> None:
        prom = _prometheus()
        if EXTENSION_KEY not in app.extensions:
            raise RuntimeError(
                "ConnectWiseMetrics(app) needs the extension first: cw.init_app(app, db=db)"
            )
        self._prom = prom
        self.app = app
        self.registry = registry if registry is not None else prom.CollectorRegistry()
        state = app.extensions[EXTENSION_KEY]
        self.latency = prom.Histogram(
            "connectwise_delivery_latency_seconds",
            "Seconds from a change being recorded to every step having reached ConnectWise",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.failures = prom.Counter(
            "connectwise_delivery_failures",
            "Failed delivery attempts (final: the change needs attention)",
            ["final"],
            registry=self.registry,
        )
        self.calls = prom.Counter(
            "connectwise_calls",
            "HTTP calls to ConnectWise by tenant and outcome",
            ["tenant", "outcome"],
            registry=self.registry,
        )
        self.cache_hits = prom.Counter(
            "connectwise_search_cache_hits",
            "Ticket searches answered from the cache",
            ["tenant"],
            registry=self.registry,
        )
        self.cache_misses = prom.Counter(
            "connectwise_search_cache_misses",
            "Ticket searches answered by ConnectWise",
            ["tenant"],
            registry=self.registry,
        )
        self.registry.register(_OutboxCollector(app, _gauge_family()))
        # Weak references (blinker's default): the receivers go when this object does.
        change_logged.connect(self._on_logged, sender=app)
        change_failed.connect(self._on_failed, sender=app)
        connectwise_called.connect(self._on_call, sender=state.tenants)
        search_answered.connect(self._on_search, sender=state.search)

    # -- signal receivers --------------------------------------------------------------------

    def _on_logged(self, sender: Any, *, change: Any = None, **extra: Any) -> None:
        created = getattr(change, "created_at", None)
        if isinstance(created, datetime):
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            self.latency.observe(max(0.0, (datetime.now(UTC) - created).total_seconds()))

    def _on_failed(self, sender: Any, *, final: bool = False, **extra: Any) -> None:
        self.failures.labels(final="true" if final else "false").inc()

    def _on_call(
        self,
        sender: Any,
        *,
        tenant: str | None = None,
        status: int | None = None,
        error: str | None = None,
        **extra: Any,
    ) -> None:
        self.calls.labels(tenant=tenant or "", outcome=call_outcome(status, error)).inc()

    def _on_search(self, sender: Any, *, tenant: str = "", hit: bool = False, **extra: Any) -> None:
        (self.cache_hits if hit else self.cache_misses).labels(tenant=tenant).inc()

    # -- exposition --------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The registry in Prometheus' text format, and its content type."""
        return self._prom.generate_latest(self.registry), str(self._prom.CONTENT_TYPE_LATEST)

    def wsgi_app(self) -> Any:
        """A WSGI app answering the metrics (for ``DispatcherMiddleware``)."""
        return self._prom.make_wsgi_app(self.registry)

    def blueprint(self, url: str = "/metrics", name: str = "connectwise_metrics") -> Blueprint:
        """A blueprint with ``GET <url>`` answering the metrics."""
        bp = Blueprint(name, __name__)

        @bp.get(url)
        def metrics() -> Response:
            body, content_type = self.render()
            return Response(body, content_type=content_type)

        return bp

    def close(self) -> None:
        """Stop listening to the extension's signals."""
        change_logged.disconnect(self._on_logged)
        change_failed.disconnect(self._on_failed)
        connectwise_called.disconnect(self._on_call)
        search_answered.disconnect(self._on_search)
