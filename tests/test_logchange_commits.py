"""A log-change on the happy path: one commit before its writes, a long-lived pool of step
threads, and every recovery guarantee of the outbox kept (tests/test_outbox.py has the rest)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from flask_connectwise.crypto import generate_key
from flask_connectwise.errors import UnavailableError
from flask_connectwise.models import DELIVERED, utcnow
from flask_connectwise.outbox import delivery
from tests.hosts import TENANT_A, cw_of, make_host_app
from tests.json_api import configure
from tests.outbox_helpers import TICKET, copies_on_sandbox, quick_worker
from tests.test_outbox import drain, target_status

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(tmp_path, connectwise_sandbox):
    app = make_host_app(f"sqlite:///{tmp_path / 'logchange.db'}")
    configure(app, connectwise_sandbox)
    yield app
    with app.app_context():
        app.extensions["test_db"].session.remove()
        app.extensions["test_db"].engine.dispose()


def _commits(app) -> list[str]:
    """Counts the database commits of ``app``'s engine from now on."""
    seen: list[str] = []
    engine = app.extensions["test_db"].engine
    sa.event.listen(engine, "commit", lambda conn: seen.append("commit"))
    return seen


def test_a_log_change_commits_once_before_its_writes(app, connectwise_sandbox):
    """The steps are recorded "sent" in the commit that records the change: at the first
    write to ConnectWise the stored row already says so, and the whole log-change commits
    twice (the change, then its outcome), where it used to commit three times."""
    status_id = target_status(connectwise_sandbox)
    with app.app_context():
        cw = cw_of(app)
        cw.outbox.log_change(TENANT_A, TICKET, "Warm up", member="jdoe", hours=0.25)
        engine = app.extensions["test_db"].engine
        client = cw.tenants.client_for(TENANT_A)
        stored: list[tuple[str, str]] = []
        add_note = client.add_note

        def watched(*args: Any, **kwargs: Any) -> Any:
            with engine.connect() as conn:  # what another process would find now
                stored.append(
                    conn.execute(
                        sa.text(
                            "SELECT note_state, time_state FROM connectwise_change_log "
                            "ORDER BY id DESC LIMIT 1"
                        )
                    ).one()
                )
            return add_note(*args, **kwargs)

        client.add_note = watched
        commits = _commits(app)
        outcome = cw.outbox.log_change(
            TENANT_A, TICKET, "One commit", member="jdoe", hours=0.25, status_id=status_id
        )
    assert outcome.state == DELIVERED
    assert [tuple(s) for s in stored] == [("sent", "sent")]
    assert len(commits) == 2


def test_a_log_change_looks_nothing_up_before_its_first_writes(app, connectwise_sandbox):
    """Steps recorded "sent" by the change's own commit are not in doubt: no look-up of the
    ticket's notes or time entries before they are posted."""
    with app.app_context():
        cw = cw_of(app)
        before = len(connectwise_sandbox.requests)
        outcome = cw.outbox.log_change(TENANT_A, TICKET, "No look-up", member="jdoe", hours=0.25)
    assert outcome.state == DELIVERED
    calls = [(r.method, r.path) for r in connectwise_sandbox.requests[before:]]
    assert not [c for c in calls if c[0] == "GET" and ("notes" in c[1] or "time/entries" in c[1])]
    assert [c[0] for c in calls].count("POST") == 2
    assert copies_on_sandbox(connectwise_sandbox, outcome.reference) == (1, 1)


def test_a_log_change_stopped_before_any_write_leaves_nothing_in_doubt(app, connectwise_sandbox):
    """Refused before anything was sent (an unverified ticket that does not exist): the steps
    recorded "sent" with the change end failed, not in doubt."""
    with app.app_context():
        cw = cw_of(app)
        outcome = cw.outbox.log_change(
            TENANT_A, 99999999, "Nowhere", member="jdoe", hours=0.25, ticket_verified=False
        )
        row = cw.outbox.find(outcome.reference)
        assert (row.note_state, row.time_state) == ("failed", "failed")
        assert row.state == "failed"


def test_a_log_change_without_a_client_leaves_its_steps_pending(app, connectwise_sandbox):
    """No client for the tenant (ConnectWise unreachable while its settings are read): nothing
    went out, so the steps recorded "sent" with the change are pending again."""
    with app.app_context():
        cw = cw_of(app)

        def unreachable(tenant: str) -> Any:
            raise UnavailableError("ConnectWise did not answer", sent=False)

        cw.outbox.tenants.client_settings_and_revision = unreachable
        outcome = cw.outbox.log_change(TENANT_A, TICKET, "Later", member="jdoe", hours=0.25)
        row = cw.outbox.find(outcome.reference)
        assert (row.note_state, row.time_state, row.state) == ("pending", "pending", "retrying")
        del cw.outbox.tenants.client_settings_and_revision
    row = drain(app, row.id)
    assert row.state == DELIVERED


def test_a_crash_during_a_log_change_is_completed_once_by_a_worker(tmp_path, connectwise_sandbox):
    """The process dies while the time entry is on the wire, after the change's only commit
    before its writes: a worker looks for both steps and completes the change once."""
    database = tmp_path / "crash.db"
    keys = [generate_key("k1")]
    app = make_host_app(f"sqlite:///{database}", keys=keys)
    configure(app, connectwise_sandbox)
    script = textwrap.dedent(
        f"""
        import os, signal, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from flask_connectwise.models import ChangeLogRow
        from tests.hosts import cw_of, make_host_app
        app = make_host_app({f"sqlite:///{database}"!r}, keys={keys!r})
        with app.app_context():
            cw = cw_of(app)
            client = cw.tenants.client_for("{TENANT_A}")
            def die(*args, **kwargs):
                time.sleep(0.3)  # let the note go out first
                print(cw.outbox.session.query(cw.models.ChangeLog).one().reference, flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            client.add_time_entry = die
            cw.outbox.log_change("{TENANT_A}", {TICKET}, "Crash test", member="jdoe", hours=0.5)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr
    reference = proc.stdout.split()[0]
    assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 0)
    with app.app_context():
        cw = cw_of(app)
        row = cw.outbox.find(reference)
        assert (row.note_state, row.time_state) == ("sent", "sent")  # in doubt, not blind
        assert quick_worker(cw.outbox).claim() == []  # the dead process's lease holds
        row.lease_until = utcnow() - timedelta(seconds=1)
        cw.outbox.session.commit()
        change_id = row.id
    row = drain(app, change_id)
    assert row.state == DELIVERED
    assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 1)
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def test_changes_share_one_long_lived_pool_of_step_threads(app, connectwise_sandbox, monkeypatch):
    """No thread pool is made per change: the parallel steps of every change go to one pool,
    and a change's first step runs on the delivering thread."""
    made: list[int] = []
    real = delivery.ThreadPoolExecutor

    class Counted(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            made.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(delivery, "ThreadPoolExecutor", Counted)
    monkeypatch.setattr(delivery, "_steps_pool", None)
    threads: set[str] = set()
    status_id = target_status(connectwise_sandbox)
    with app.app_context():
        cw = cw_of(app)
        client = cw.tenants.client_for(TENANT_A)
        for name in ("add_note", "add_time_entry", "update_status"):
            real_call = getattr(client, name)

            def seen(*args: Any, _call: Any = real_call, **kwargs: Any) -> Any:
                threads.add(threading.current_thread().name)
                return _call(*args, **kwargs)

            setattr(client, name, seen)
        for n in range(4):
            outcome = cw.outbox.log_change(
                TENANT_A, TICKET, f"Pooled {n}", member="jdoe", hours=0.25, status_id=status_id
            )
            assert outcome.state == DELIVERED
    pool = delivery._steps_pool
    assert made == [1]
    assert pool is not None
    pool.shutdown(wait=True)
    assert threading.current_thread().name in threads
    assert all(
        t == threading.current_thread().name or t.startswith("connectwise-step") for t in threads
    )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_makes_its_own_pool_of_step_threads():
    """A pool made before a fork has no threads in the child: the child makes its own."""
    assert delivery.steps_pool().submit(lambda: 1).result(timeout=5) == 1
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            ok = delivery._steps_pool is None
            ok = ok and delivery.steps_pool().submit(lambda: 2).result(5) == 2
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
