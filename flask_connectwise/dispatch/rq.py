"""Delivery on the host's RQ queue (``CONNECTWISE_DELIVERY = "rq"``; extra ``rq``).

The web process enqueues one job per change: :func:`deliver_change` with the change id, on
``CONNECTWISE_RQ_QUEUE`` (an ``rq.Queue``, ``"module:attribute"`` naming one, or a queue name
on the Redis of ``CONNECTWISE_RQ_REDIS_URL``; default queue ``"connectwise"``).

The job needs the Flask app in the worker: it runs in the current app context when the host's
worker pushes one, else it builds the app once per process from ``CONNECTWISE_RQ_APP`` (sent
with each job: ``"module:app"`` or ``"module:create_app"``, a factory called without
arguments). So ``rq worker connectwise`` (or ``--burst``) needs only the host's package on its
path.

RQ's own retries are not used: a delivery that fails is retried from the outbox's backoff by the
thread sweep or a ``flask connectwise deliver`` worker; a duplicated job writes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, has_app_context

from .core import deliver_change_in
from .imports import resolve

#: The job's function, as RQ imports it.
JOB = "flask_connectwise.dispatch.rq.deliver_change"
DEFAULT_QUEUE = "connectwise"

_apps: dict[str, Flask] = {}
_apps_lock = threading.Lock()


def app_from(spec: str) -> Flask:
    """The Flask app ``spec`` names (``"module:app"`` or a factory), built once per process."""
    with _apps_lock:
        app = _apps.get(spec)
        if app is None:
            found = resolve(spec, "CONNECTWISE_RQ_APP")
            app = found if isinstance(found, Flask) else found()
            if not isinstance(app, Flask):
                raise RuntimeError("CONNECTWISE_RQ_APP must name a Flask app or an app factory")
            _apps[spec] = app
        return app


def deliver_change(change_id: int, app_spec: str | None = None) -> dict[str, Any] | None:
    """The job: deliver the committed change ``change_id``; returns its outcome as the HTTP
    contract's JSON, or ``None`` when nothing was done."""
    if has_app_context():
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    elif app_spec:
        app = app_from(app_spec)
    else:
        raise RuntimeError(
            "the connectwise RQ job has no Flask app: set CONNECTWISE_RQ_APP or run the worker "
            "in an app context"
        )
    outcome = deliver_change_in(app, int(change_id))
    return None if outcome is None else outcome.to_json()


def queue_of(app: Flask) -> Any:
    """The RQ queue changes of ``app`` go to."""
    configured = app.config.get("CONNECTWISE_RQ_QUEUE") or DEFAULT_QUEUE
    if isinstance(configured, str) and ":" not in configured:
        from redis import Redis
        from rq import Queue

        url = app.config.get("CONNECTWISE_RQ_REDIS_URL")
        if not url:
            raise RuntimeError(
                'CONNECTWISE_DELIVERY is "rq": set CONNECTWISE_RQ_QUEUE to an rq.Queue, or '
                "CONNECTWISE_RQ_REDIS_URL (and the queue name)"
            )
        return Queue(configured, connection=Redis.from_url(url))
    return resolve(configured, "CONNECTWISE_RQ_QUEUE")


def enqueuer(app: Flask) -> Callable[[int], None]:
    """``enqueue(change_id)``: one job for the change on the app's queue (made once)."""
    queue: list[Any] = []
    spec = app.config.get("CONNECTWISE_RQ_APP")

    def enqueue(change_id: int) -> None:
        if not queue:
            queue.append(queue_of(app))
        queue[0].enqueue(JOB, int(change_id), spec, result_ttl=300, failure_ttl=86400)

    return enqueue
