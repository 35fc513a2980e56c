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
    app = make_host_app(
        database_url, CONNECTWISE_SWEEP_SECONDS=0.3, **connectwise_sandbox.app_config
    )
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


# -- real queue workers --------------------------------------------------------------------


def _require(module: str) -> None:
    """Import ``module``; without it the test fails under scripts/test.sh, else skips."""
    try:
        __import__(module)
    except ImportError:
        if os.environ.get("CONNECTWISE_TEST_REQUIRE_SERVICES"):
            pytest.fail(f"{module} is not installed; pip install -e '.[dev]'")
        pytest.skip(f"{module} is not installed")


def _redis_db(redis_url: str, db: int) -> str:
    """The test Redis, database ``db``, after checking it answers. Never flushed: tests in
    other xdist workers use it at the same time (each on its own queue names)."""
    import redis

    parts = urlsplit(redis_url)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))
    assert parts.hostname in ("127.0.0.1", "localhost", "::1"), "the test Redis must be loopback"
    try:
        client = redis.Redis.from_url(url, socket_timeout=2)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        if os.environ.get("CONNECTWISE_TEST_REQUIRE_SERVICES"):
            pytest.fail(f"the test Redis at {redis_url} does not answer: {exc}")
        pytest.skip(f"the test Redis does not answer: {exc}")
    return url


def _worker_env(database_url: str, sandbox: Any, keys: list[str], **more: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT),
        CW_DISPATCH_DB=database_url,
        CW_DISPATCH_KEYS=json.dumps(keys),
        CW_DISPATCH_PORT=str(sandbox.port),
        **more,
    )
    return env


@pytest.fixture
def keys() -> list[str]:
    from flask_connectwise.crypto import generate_key

    return [generate_key("k1")]


def _queue_host(database_url: str, sandbox: Any, keys: list[str], **config: Any) -> Flask:
    assert urlsplit(sandbox.url).hostname in ("127.0.0.1", "::1")
    app = make_host_app(database_url, keys=keys, **sandbox.app_config, **config)
    configure_tenant(app, TENANT_A, sandbox)
    return app


def test_a_real_celery_worker_delivers_a_submitted_change_and_a_duplicate_writes_once(
    database_url, connectwise_sandbox, redis_url, keys, tmp_path
):
    _require("celery")
    from tests.dispatch_host import make_celery

    broker = _redis_db(redis_url, 11)
    queue = f"cwtest-{os.getpid()}-{time.monotonic_ns()}"
    celery = make_celery(broker, queue)
    app = _queue_host(
        database_url,
        connectwise_sandbox,
        keys,
        CONNECTWISE_DELIVERY="celery",
        CONNECTWISE_CELERY_APP=celery,
    )
    env = _worker_env(
        database_url, connectwise_sandbox, keys, CW_DISPATCH_BROKER=broker, CW_DISPATCH_QUEUE=queue
    )
    log_path = tmp_path / "celery.log"
    try:
        change_id, reference = record(app)
        dispatcher = dispatcher_of(app)
        # Enqueued before any worker runs: the messages wait in Redis; one change, three
        # messages (a duplicated submit and a redelivered message).
        handles = [dispatcher.submit(change_id) for _ in range(2)]
        celery.send_task("flask_connectwise.deliver_change", args=[change_id])
        assert handles[0].wait(0.2) is None
        with open(log_path, "w") as log_file:
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "tests.dispatch_host:celery_app",
                    "worker",
                    "--pool",
                    "solo",
                    "--concurrency",
                    "1",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-Q",
                    queue,
                    "--loglevel",
                    "INFO",
                ],
                cwd=ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            try:
                outcome = handles[0].wait(40.0)
                assert outcome is not None and outcome.delivered, log_path.read_text()[-3000:]
                assert handles[1].wait(5.0) == outcome
                # Every message was consumed (the worker says so) before counting writes.
                deadline = time.monotonic() + 20
                while (
                    log_path.read_text().count("succeeded in") < 3 and time.monotonic() < deadline
                ):
                    time.sleep(0.1)
                assert log_path.read_text().count("succeeded in") == 3, log_path.read_text()[-3000:]
            finally:
                worker.terminate()
                worker.wait(timeout=15)
        assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 1)
    finally:
        dispose(app)


def test_a_real_rq_worker_delivers_a_submitted_change_and_a_duplicate_writes_once(
    database_url, connectwise_sandbox, redis_url, keys
):
    _require("rq")
    url = _redis_db(redis_url, 12)
    queue = f"cwtest-{os.getpid()}-{time.monotonic_ns()}"
    app = _queue_host(
        database_url,
        connectwise_sandbox,
        keys,
        CONNECTWISE_DELIVERY="rq",
        CONNECTWISE_RQ_QUEUE=queue,
        CONNECTWISE_RQ_REDIS_URL=url,
        CONNECTWISE_RQ_APP="tests.dispatch_host:create_app",
    )
    try:
        change_id, reference = record(app)
        dispatcher = dispatcher_of(app)
        handles = [dispatcher.submit(change_id) for _ in range(3)]  # one change, three jobs
        assert handles[0].wait(0.2) is None
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "rq.cli",
                "worker",
                "--burst",
                "--url",
                url,
                "--worker-class",
                "rq.SimpleWorker",
                queue,
            ],
            cwd=ROOT,
            env=_worker_env(database_url, connectwise_sandbox, keys),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        outcome = handles[0].wait(5.0)
        assert outcome is not None and outcome.delivered, done.stderr[-3000:]
        from redis import Redis
        from rq import Queue

        finished = Queue(queue, connection=Redis.from_url(url)).finished_job_registry
        assert finished.count == 3, done.stderr[-3000:]
        assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 1)
    finally:
        dispose(app)


def test_the_queue_sweep_enqueues_due_changes_only_and_a_worker_delivers_them(
    database_url, connectwise_sandbox, redis_url, keys
):
    """A change whose message was lost, and a retry whose backoff has passed, are enqueued
    again by the web process's sweep; a retry still waiting out its backoff is not."""
    from datetime import timedelta

    from flask_connectwise.models import utcnow

    _require("rq")
    from redis import Redis
    from rq import Queue

    url = _redis_db(redis_url, 12)
    queue = f"cwtest-sweep-{os.getpid()}-{time.monotonic_ns()}"
    app = _queue_host(
        database_url,
        connectwise_sandbox,
        keys,
        CONNECTWISE_DELIVERY="rq",
        CONNECTWISE_RQ_QUEUE=queue,
        CONNECTWISE_RQ_REDIS_URL=url,
        CONNECTWISE_RQ_APP="tests.dispatch_host:create_app",
    )
    jobs = Queue(queue, connection=Redis.from_url(url))
    try:
        lost, lost_ref = record(app, "Dispatch: message lost")
        due, due_ref = record(app, "Dispatch: retry due")
        waiting, waiting_ref = record(app, "Dispatch: retry waiting")
        with app.app_context():
            cw = cw_of(app)
            for change_id, when in ((due, -5), (waiting, 3600)):
                row = cw.outbox.session.get(cw.models.ChangeLog, change_id)
                row.state = ChangeState.RETRYING
                row.next_attempt_at = utcnow() + timedelta(seconds=when)
            cw.outbox.session.commit()
        dispatcher = dispatcher_of(app)
        assert jobs.count == 0  # nothing submitted: as if every message had been lost
        assert dispatcher.sweep_once() == 2
        assert sorted(job.args[0] for job in jobs.jobs) == sorted([lost, due])
        done = subprocess.run(
            [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", url,
             "--worker-class", "rq.SimpleWorker", queue],
            cwd=ROOT,
            env=_worker_env(database_url, connectwise_sandbox, keys),
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert row_state(app, lost) == row_state(app, due) == ChangeState.DELIVERED, (
            done.stderr[-4000:] + done.stdout[-3000:]
        )
        assert row_state(app, waiting) == ChangeState.RETRYING
        assert copies_on_sandbox(connectwise_sandbox, lost_ref) == (1, 1)
        assert copies_on_sandbox(connectwise_sandbox, due_ref) == (1, 1)
        assert copies_on_sandbox(connectwise_sandbox, waiting_ref) == (0, 0)
        assert dispatcher.sweep_once() == 0  # nothing is due any more
    finally:
        jobs.delete(delete_jobs=True)
        dispose(app)


def test_worker_mode_enqueues_nothing_and_flask_connectwise_deliver_delivers(
    database_url, connectwise_sandbox, keys
):
    app = _queue_host(database_url, connectwise_sandbox, keys, CONNECTWISE_DELIVERY="worker")
    try:
        change_id, reference = record(app)
        dispatcher = dispatcher_of(app)
        assert isinstance(dispatcher, WorkerDispatcher)
        handle = dispatcher.submit(change_id)
        assert handle.wait(0.3) is None
        assert row_state(app, change_id) == ChangeState.PENDING
        assert connectwise_sandbox.writes() == []
        result = app.test_cli_runner().invoke(args=["connectwise", "deliver", "--once"])
        assert result.exit_code == 0, result.output
        outcome = handle.wait(5.0)
        assert outcome is not None and outcome.delivered
        assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 1)
    finally:
        dispose(app)
