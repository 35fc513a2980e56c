"""Delivery on the host's Celery app (``CONNECTWISE_DELIVERY = "celery"``; extra ``celery``).

The web process sends one task per change, by name (``flask_connectwise.deliver_change``, the
change id its only argument), to the Celery app in ``CONNECTWISE_CELERY_APP`` (the object or
``"module:attribute"``) or the one given to ``cw.init_celery(celery_app)``. The worker process
must know the task and have the Flask app: in the module Celery's ``-A`` loads, after creating
the Flask app, call::

    cw.init_celery(celery_app, app)      # or flask_connectwise.dispatch.celery.register(...)

The task runs in ``app``'s app context. With no ``app`` (the host's ``FlaskTask`` base that
pushes an app context itself, as in Flask's Celery guide) it uses ``current_app``.

Celery's own retries are not used: a delivery that fails is retried from the outbox's backoff
(``next_attempt_at``) by the thread sweep or a ``flask connectwise deliver`` worker; a
duplicated message finds the change delivered or leased and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app

from ..outbox import Outcome
from .core import deliver_change_in
from .imports import resolve

#: The task's name on every Celery app.
TASK_NAME = "flask_connectwise.deliver_change"
#: Where ``cw.init_celery`` keeps an app's Celery app.
EXTENSION_KEY = "connectwise.celery"


def deliver_change(change_id: int) -> dict[str, Any] | None:
    """Deliver the committed change ``change_id`` of the current Flask app (the task's body);
    returns its outcome as the HTTP contract's JSON, or ``None`` when nothing was done."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return _json(deliver_change_in(app, int(change_id)))


def _json(outcome: Outcome | None) -> dict[str, Any] | None:
    return None if outcome is None else outcome.to_json()


def register(celery_app: Any, app: Flask | None = None) -> Any:
    """Register the ``flask_connectwise.deliver_change`` task on ``celery_app`` (the worker
    side), delivering in ``app``'s context (``None``: the current app's); return the task. Also
    remembers ``celery_app`` as ``app``'s, for the web side."""
    if app is not None:
        app.extensions[EXTENSION_KEY] = celery_app

    def run(change_id: int) -> dict[str, Any] | None:
        if app is None:
            return deliver_change(change_id)
        return _json(deliver_change_in(app, int(change_id)))

    run.__name__ = "deliver_change"
    run.__qualname__ = "deliver_change"
    return celery_app.task(name=TASK_NAME, ignore_result=False, acks_late=True)(run)


def celery_app_of(app: Flask) -> Any:
    """The Celery app changes of ``app`` are sent to."""
    configured = app.config.get("CONNECTWISE_CELERY_APP")
    if configured is not None:
        return resolve(configured, "CONNECTWISE_CELERY_APP")
    found = app.extensions.get(EXTENSION_KEY)
    if found is None:
        raise RuntimeError(
            'CONNECTWISE_DELIVERY is "celery" but no Celery app is known: set '
            "CONNECTWISE_CELERY_APP or call cw.init_celery(celery_app, app)"
        )
    return found


def enqueuer(app: Flask) -> Callable[[int], None]:
    """``enqueue(change_id)``: send one task for the change (the Celery app looked up then,
    so ``cw.init_celery`` may come after ``init_app``)."""

    def enqueue(change_id: int) -> None:
        celery_app_of(app).send_task(TASK_NAME, args=[int(change_id)])

    return enqueue
