"""Delivery off the request path (flask_connectwise.dispatch): the thread pool and its sweep,
a real Celery worker, a real RQ worker and the "worker" mode, over the sandbox on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from flask import Flask

from flask_connectwise.current import state
from flask_connectwise.dispatch import FutureHandle, ThreadDispatcher, WorkerDispatcher
from flask_connectwise.models import ChangeState
from flask_connectwise.outbox import Outcome
from flask_connectwise.testing import configure_tenant
from tests.hosts import TENANT_A, cw_of, dispose, make_host_app
from tests.outbox_helpers import TICKET, copies_on_sandbox

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def host(database_url: str, connectwise_sandbox: Any) -> Iterator[Flask]:
    """The host app in "thread" mode with a quick sweep, tenant A on the sandbox."""
    app = make_host_app(database_url, CONNECTWISE_SWEEP_SECONDS=0.3, **connectwise_sandbox.app_config)
    configure_tenant(app, TENANT_A, connectwise_sandbox)
    yield app
    dispatcher_of(app).close()
    dispose(app)


def dispatcher_of(app: Flask) -> Any:
    return state(app).dispatcher


def record(app: Flask, note: str = "Dispatch: a change") -> tuple[int, str]:
    """Record and commit one change of tenant A (nothing delivers it yet)."""
    with app.app_context():
        cw = cw_of(app)
        change, _ = cw.outbox.record(TENANT_A, TICKET, note, member="jdoe", hours=0.25)
        cw.outbox.session.commit()
        return int(change.id), str(change.reference)


def row_state(app: Flask, change_id: int) -> str:
    with app.app_context():
        cw = cw_of(app)
        return str(cw.outbox.session.get(cw.models.ChangeLog, change_id).state)


def wait_for_state(app: Flask, change_id: int, state: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    found = row_state(app, change_id)
    while found != state and time.monotonic() < deadline:
        time.sleep(0.05)
        found = row_state(app, change_id)
    return found


# -- thread mode ---------------------------------------------------------------------------


def test_thread_mode_delivers_off_the_calling_thread_and_wait_returns_the_outcome(
    host, connectwise_sandbox
):
    change_id, reference = record(host)
    dispatcher = dispatcher_of(host)
    assert isinstance(dispatcher, ThreadDispatcher)
    seen: list[str] = []
    import flask_connectwise.dispatch.core as core

    original = core._deliver

    def spy(app: Flask, cid: int) -> Any:
        seen.append(threading.current_thread().name)
        return original(app, cid)

    core._deliver = spy  # type: ignore[assignment]
    try:
        handle = dispatcher.submit(change_id)
        assert isinstance(handle, FutureHandle)
        outcome = handle.wait(10.0)
    finally:
        core._deliver = original  # type: ignore[assignment]
    assert isinstance(outcome, Outcome) and outcome.delivered, outcome
    assert outcome.reference == reference
    assert seen and seen[0] != threading.current_thread().name
    assert seen[0].startswith("connectwise-deliver")
    assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 1)


def test_wait_returns_none_when_the_sandbox_is_slow_and_the_change_is_delivered_later(
    host, connectwise_sandbox
):
    change_id, reference = record(host)
    connectwise_sandbox.set_latency(0.4)
    try:
        started = time.monotonic()
        handle = dispatcher_of(host).submit(change_id)
        assert handle.wait(0.2) is None
        assert time.monotonic() - started < 1.0
        assert row_state(host, change_id) != ChangeState.DELIVERED
        outcome = handle.wait(15.0)
    finally:
        connectwise_sandbox.set_latency(0.0)
    assert outcome is not None and outcome.delivered
    assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 1)


def test_the_sweep_delivers_a_due_retry_with_nothing_else_running(host, connectwise_sandbox):
    change_id, reference = record(host)
    dispatcher = dispatcher_of(host)
    connectwise_sandbox.inject_fault("service/tickets/*/notes", "status", status=503, method="POST")
    outcome = dispatcher.submit(change_id).wait(10.0)
    assert outcome is not None and outcome.state == ChangeState.RETRYING
    with host.app_context():  # due at once (the backoff of a first failure is seconds)
        cw = cw_of(host)
        row = cw.outbox.session.get(cw.models.ChangeLog, change_id)
        row.next_attempt_at = None
        cw.outbox.session.commit()
    # No submit, no worker, no request: only the sweep (CONNECTWISE_SWEEP_SECONDS=0.3).
    assert wait_for_state(host, change_id, ChangeState.DELIVERED, 10.0) == ChangeState.DELIVERED
    assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 1)


def test_a_duplicate_submit_writes_once(host, connectwise_sandbox):
    change_id, reference = record(host)
    dispatcher = dispatcher_of(host)
    connectwise_sandbox.set_latency(0.1)
    try:
        handles = [dispatcher.submit(change_id) for _ in range(4)]
        outcomes = [h.wait(15.0) for h in handles]
    finally:
        connectwise_sandbox.set_latency(0.0)
    assert all(o is not None and o.delivered for o in outcomes), outcomes
    assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 1)
