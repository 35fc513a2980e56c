"""Durable log-change: the fault matrix, crash recovery, and workers sharing the outbox."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from flask_connectwise.crypto import generate_key
from flask_connectwise.delivery import reference_line
from flask_connectwise.models import DELIVERED, GAVE_UP, utcnow
from tests.hosts import TENANT_A, cw_of, make_host_app
from tests.json_api import configure
from tests.outbox_helpers import TICKET, FaultyAdapter, copies_on_sandbox, quick_worker, refused

STEP_TARGETS = {
    "note": ("POST", "service/tickets/*/notes"),
    "time": ("POST", "time/entries"),
    "status": ("PATCH", "service/tickets/*"),
}


@pytest.fixture
def app(tmp_path):
    app = make_host_app(f"sqlite:///{tmp_path / 'outbox.db'}")
    app.config["CONNECTWISE_TIMEOUT"] = 0.6
    yield app
    with app.app_context():
        app.extensions["test_db"].session.remove()
        app.extensions["test_db"].engine.dispose()


def target_status(sandbox) -> int:
    ticket = sandbox.ticket(TICKET)
    return next(
        s["id"]
        for s in sandbox.board_statuses(ticket["board"]["id"])
        if s["id"] != ticket["status"]["id"]
        and not s.get("inactive")
        and not s.get("closedStatus")
        and not s.get("timeEntryNotAllowed")
    )


def drain(app, change_id: int, *, seconds: float = 15.0) -> Any:
    """Run the worker until the change is delivered (or time runs out)."""
    with app.app_context():
        cw = cw_of(app)
        worker = quick_worker(cw.outbox)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            worker.run_once()
            row = cw.outbox.session.get(cw.models.ChangeLog, change_id)
            cw.outbox.session.refresh(row)
            if row.state == DELIVERED:
                return row
            time.sleep(0.05)
        return row


SANDBOX_FAULTS = {
    "read timeout after applying": {"kind": "apply_then_timeout", "delay": 1.0},
    "429 with Retry-After": {"kind": "status", "status": 429, "retry_after": 1},
    "500": {"kind": "status", "status": 500},
    "502": {"kind": "status", "status": 502},
    "401": {"kind": "status", "status": 401},
    "invalid JSON": {"kind": "invalid_json"},
}
TRANSPORT_FAULTS = {
    "connection refused": refused,
    "connect timeout": lambda: requests.exceptions.ConnectTimeout("connect timed out"),
}


@pytest.mark.parametrize("when", ["first try", "retry"])
@pytest.mark.parametrize("fault", [*SANDBOX_FAULTS, *TRANSPORT_FAULTS])
@pytest.mark.parametrize("step", ["note", "time", "status"])
def test_fault_matrix_ends_with_exactly_one_of_each(app, connectwise_sandbox, step, fault, when):
    configure(app, connectwise_sandbox)
    status_id = target_status(connectwise_sandbox)
    method, path = STEP_TARGETS[step]
    with app.app_context():
        cw = cw_of(app)
        client = cw.tenants.client_for(TENANT_A)
        adapter = FaultyAdapter()
        client.mount("http://", adapter)
        if when == "retry":  # the first attempt fails cleanly, the retry meets the fault
            connectwise_sandbox.inject_fault(path, "status", status=401, method=method)
        if fault in SANDBOX_FAULTS:
            connectwise_sandbox.inject_fault(path, method=method, **SANDBOX_FAULTS[fault])
        else:
            adapter.plan.append((method, path, TRANSPORT_FAULTS[fault]()))
        change, _ = cw.outbox.record(
            TENANT_A,
            TICKET,
            f"Fault matrix: {step} / {fault} / {when}",
            member="jdoe",
            hours=0.25,
            status_id=status_id,
        )
        cw.outbox.session.commit()
        change_id = change.id
        reference = change.reference
        cw.outbox.deliver(change)
    row = drain(app, change_id)
    assert row.state == DELIVERED, (
        row.note_state,
        row.time_state,
        row.status_state,
        row.note_error,
        row.time_error,
        row.status_error,
    )
    assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 1)
    assert connectwise_sandbox.ticket(TICKET)["status"]["id"] == status_id
    assert row.note_remote_id and row.time_remote_id


def test_a_crash_between_steps_is_completed_by_a_worker(tmp_path, connectwise_sandbox):
    """A process dies while the time entry is on the wire; a worker finishes the change."""
    database = tmp_path / "crash.db"
    keys = [generate_key("k1")]
    app = make_host_app(f"sqlite:///{database}", keys=keys)
    configure(app, connectwise_sandbox)
    status_id = target_status(connectwise_sandbox)
    script = textwrap.dedent(
        f"""
        import os, signal, sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
        from tests.hosts import cw_of, make_host_app
        app = make_host_app({f"sqlite:///{database}"!r}, keys={keys!r})
        with app.app_context():
            cw = cw_of(app)
            client = cw.tenants.client_for("{TENANT_A}")
            def die(*args, **kwargs):
                time.sleep(0.3)  # let the note go out first
                os.kill(os.getpid(), signal.SIGKILL)
            client.add_time_entry = die
            row, _ = cw.outbox.record("{TENANT_A}", {TICKET}, "Crash test", member="jdoe",
                                      hours=0.5, status_id={status_id})
            cw.outbox.session.commit()
            print(row.id, row.reference, flush=True)
            cw.outbox.deliver(row)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr
    change_id, reference = proc.stdout.split()
    assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 0)
    with app.app_context():
        row = cw_of(app).outbox.session.get(cw_of(app).models.ChangeLog, int(change_id))
        assert (row.note_state, row.time_state) == ("sent", "sent")  # in doubt, not blind
        # The dead process still holds its lease: no worker touches the change until it ends.
        assert quick_worker(cw_of(app).outbox).claim() == []
        row.lease_until = utcnow() - timedelta(seconds=1)
        cw_of(app).outbox.session.commit()
    row = drain(app, int(change_id))
    assert row.state == DELIVERED
    assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 1)
    assert connectwise_sandbox.ticket(TICKET)["status"]["id"] == status_id
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def test_changes_past_the_give_up_age_fail_and_signal(app, connectwise_sandbox):
    from flask_connectwise.signals import change_failed

    configure(app, connectwise_sandbox)
    finals: list[bool] = []
    with (
        app.app_context(),
        change_failed.connected_to(lambda sender, **kw: finals.append(kw.get("final")), app),
    ):
        cw = cw_of(app)
        row, _ = cw.outbox.record(TENANT_A, TICKET, "too old", hours=0.25)
        row.created_at = utcnow() - timedelta(days=2)
        cw.outbox.session.commit()
        summary = quick_worker(cw.outbox).run_once()
        cw.outbox.session.refresh(row)
        assert summary.gave_up == 1 and row.state == GAVE_UP
    assert finals == [True]
    assert copies_on_sandbox(connectwise_sandbox, row.reference) == (0, 0)


def test_outbox_cli_status_and_retry(app, connectwise_sandbox):
    app.config["CONNECTWISE_REQUIRE_MEMBER"] = False  # the time entry goes out as the API member
    configure(app, connectwise_sandbox)
    connectwise_sandbox.inject_fault("time/entries", "status", status=401)
    with app.app_context():
        cw = cw_of(app)
        row, _ = cw.outbox.record(TENANT_A, TICKET, "cli retry", hours=0.25)
        cw.outbox.session.commit()
        cw.outbox.deliver(row)
        reference = row.reference
    runner = app.test_cli_runner()
    status = runner.invoke(args=["connectwise", "outbox", "status"])
    assert "retrying: 1" in status.output
    retried = runner.invoke(args=["connectwise", "outbox", "retry", reference])
    assert retried.exit_code == 0, retried.output
    assert "time entry: confirmed" in retried.output
    assert copies_on_sandbox(connectwise_sandbox, reference) == (1, 1)
    once = runner.invoke(args=["connectwise", "deliver", "--once"])
    assert once.exit_code == 0 and "Done: claimed 0" in once.output
    missing = runner.invoke(args=["connectwise", "outbox", "retry", "nope"])
    assert missing.exit_code != 0 and "No change" in missing.output


@pytest.mark.postgres
def test_two_workers_on_postgres_deliver_500_changes_once_each(postgres_url, connectwise_sandbox):
    keys = [generate_key("k1")]
    app = make_host_app(postgres_url, keys=keys)
    configure(app, connectwise_sandbox)
    with app.app_context():
        cw = cw_of(app)
        references = []
        for n in range(500):
            row, _ = cw.outbox.record(TENANT_A, TICKET, f"bulk {n}", hours=0.1)
            references.append(row.reference)
        cw.outbox.session.commit()
    counts: dict[str, int] = {}

    def work() -> None:
        with app.app_context():
            quick_worker(cw_of(app).outbox).run(once=True)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for note in connectwise_sandbox.notes(TICKET):
        for reference in references:
            if reference_line(reference) in note["text"]:
                counts[reference] = counts.get(reference, 0) + 1
    assert len(counts) == 500 and set(counts.values()) == {1}
    with app.app_context():
        model = cw_of(app).models.ChangeLog
        assert cw_of(app).outbox.session.query(model).filter(model.state != DELIVERED).count() == 0
        workers = {r.lease_owner for r in cw_of(app).outbox.session.query(model)}
        assert workers == {None}
        app.extensions["test_db"].engine.dispose()


def test_a_failed_lookup_keeps_the_step_in_doubt(app, connectwise_sandbox):
    """Found by bench/chaos.py: if the look-up after an unknown outcome fails, even with an
    error that proves the look-up itself was never sent, the note must stay "sent" (in doubt)
    and never be posted blind."""
    configure(app, connectwise_sandbox)
    with app.app_context():
        cw = cw_of(app)
        client = cw.tenants.client_for(TENANT_A)
        adapter = FaultyAdapter()
        client.mount("http://", adapter)
        connectwise_sandbox.inject_fault(
            "service/tickets/*/notes", "apply_then_drop", method="POST"
        )
        row, _ = cw.outbox.record(TENANT_A, TICKET, "in doubt", hours=0.25, member="jdoe")
        cw.outbox.session.commit()
        cw.outbox.deliver(row)
        assert row.note_state == "sent"
        adapter.plan.extend([("GET", "service/tickets/*/notes", refused()) for _ in range(4)])
        cw.outbox.deliver(row)
        assert row.note_state == "sent" and "reached" in (row.note_error or "")
        cw.outbox.deliver(row)
        assert row.state == DELIVERED
        assert copies_on_sandbox(connectwise_sandbox, row.reference) == (1, 1)


def test_a_status_that_accepts_time_goes_out_with_the_note_and_time_entry(app, connectwise_sandbox):
    """Warm (board and statuses known from the search), a log-change costs one round trip."""
    app.config["CONNECTWISE_REQUIRE_MEMBER"] = False  # about concurrency, not attribution
    api = configure(app, connectwise_sandbox)
    status_id = target_status(connectwise_sandbox)
    api.call("GET", "/tickets/search?q=12345")  # the operator's autocomplete
    with app.app_context():
        client = cw_of(app).tenants.client_for(TENANT_A)
        client.board_statuses(client.known_board(TICKET))
        cw_of(app).members.check(TENANT_A, "jdoe")  # the operator's member, checked before
    connectwise_sandbox.set_latency(0.2)
    connectwise_sandbox.clear_requests()
    body = api.call(
        "POST",
        "/tickets/12345/log-change",
        {"noteText": "together", "hours": 0.25, "statusId": status_id},
    ).get_json()
    connectwise_sandbox.set_latency(0)
    assert body["note"]["ok"] and body["timeEntry"]["ok"] and body["status"]["ok"]
    calls = connectwise_sandbox.requests
    assert sorted(r.method for r in calls) == ["PATCH", "POST", "POST"]
    # All three were in flight at once: each started before any of them was answered.
    assert max(r.started for r in calls) < min(r.started + r.duration for r in calls)


def test_a_status_refusing_time_entries_waits_for_the_time_entry(app, connectwise_sandbox):
    api = configure(app, connectwise_sandbox)
    ticket = connectwise_sandbox.ticket(TICKET)
    refusing = next(
        s["id"]
        for s in connectwise_sandbox.board_statuses(ticket["board"]["id"])
        if s.get("timeEntryNotAllowed") and not s.get("inactive")
    )
    api.call("GET", "/tickets/search?q=12345")
    body = api.call(
        "POST",
        "/tickets/12345/log-change",
        {"noteText": "parts", "hours": 0.25, "statusId": refusing},
    ).get_json()
    assert body["timeEntry"]["ok"] and body["status"]["ok"]
    assert connectwise_sandbox.ticket(TICKET)["status"]["id"] == refusing
