"""The host app as a Celery or RQ worker process builds it (tests/test_dispatch.py).

Everything comes from the environment the test gives the worker: ``CW_DISPATCH_DB`` (the test's
database URL: file-based SQLite or the test PostgreSQL), ``CW_DISPATCH_KEYS`` (JSON list of the
test's encryption keys), ``CW_DISPATCH_PORT`` (the sandbox's loopback port), and for Celery
``CW_DISPATCH_BROKER`` and ``CW_DISPATCH_QUEUE``.

    celery -A tests.dispatch_host:celery_app worker ...
    rq worker ...      (jobs carry CONNECTWISE_RQ_APP = "tests.dispatch_host:create_app")
"""

from __future__ import annotations

import json
import os
from typing import Any

from flask import Flask

from tests.hosts import cw_of, make_host_app


def create_app() -> Flask:
    """The host app on the test's database and sandbox."""
    return make_host_app(
        os.environ["CW_DISPATCH_DB"],
        keys=json.loads(os.environ["CW_DISPATCH_KEYS"]),
        CONNECTWISE_LOOPBACK_PORTS=[int(os.environ["CW_DISPATCH_PORT"])],
        CONNECTWISE_DELIVERY="worker",
        CONNECTWISE_DOUBT_SECONDS=float(os.environ.get("CW_DISPATCH_DOUBT_SECONDS", "60")),
    )


def make_celery(broker: str, queue: str) -> Any:
    """A Celery app on the test's Redis (broker and result backend), one queue of its own."""
    from celery import Celery

    celery = Celery("connectwise_test", broker=broker, backend=broker)
    celery.conf.update(
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        task_acks_late=True,
    )
    return celery


def _worker_celery() -> Any:
    if "CW_DISPATCH_BROKER" not in os.environ:
        return None
    celery = make_celery(os.environ["CW_DISPATCH_BROKER"], os.environ["CW_DISPATCH_QUEUE"])
    app = create_app()
    cw_of(app).init_celery(celery, app)
    return celery


#: What ``celery -A tests.dispatch_host:celery_app`` loads (``None`` outside a worker).
celery_app = _worker_celery()
