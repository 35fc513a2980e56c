"""A write whose answer never came may still be applied by a slow ConnectWise: the outbox
waits ``CONNECTWISE_DOUBT_SECONDS`` before it looks for it on the ticket, so a retry never
posts a second copy of a write that was merely slow (found by bench/submit.py at 12 s)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from flask_connectwise.models import ChangeState, StepState, utcnow
from flask_connectwise.outbox.worker import OutboxWorker
from flask_connectwise.testing import configure_tenant
from tests.hosts import TENANT_A, cw_of, dispose, make_host_app
from tests.outbox_helpers import TICKET, copies_on_sandbox


@pytest.fixture
def slow_app(database_url: str, connectwise_sandbox: Any) -> Any:
    app = make_host_app(
        database_url,
        CONNECTWISE_TIMEOUT=0.3,
        CONNECTWISE_DOUBT_SECONDS=2.0,
        **connectwise_sandbox.app_config,
    )
    configure_tenant(app, TENANT_A, connectwise_sandbox)
    yield app
    dispose(app)


def test_a_slow_write_is_looked_for_only_after_the_doubt_wait(slow_app, connectwise_sandbox):
    sb = connectwise_sandbox
    with slow_app.app_context():
        cw = cw_of(slow_app)
        row, _ = cw.outbox.record(TENANT_A, TICKET, "Slow server", member="jdoe")
        cw.outbox.session.commit()
        reference = row.reference
        worker = OutboxWorker(cw.outbox, backoff_base=0.01, backoff_cap=0.01)
        # The note is applied 1 s after it arrives: after our 0.3 s timeout gave up on it.
        sb.inject_fault("service/tickets/*/notes", "slow_apply", method="POST", delay=1.0)
        before = utcnow()
        worker.run(once=True)
        row = cw.outbox.find(reference)
        assert row.note_state == StepState.SENT and row.state == ChangeState.RETRYING
        # Not before the doubt wait, although the backoff alone would allow 10 ms.
        assert row.next_attempt_at >= before + timedelta(seconds=2.0)
        assert worker.run(once=True).claimed == 0
        time.sleep(2.2)  # the wait ends; the slow note has long landed
        worker.run(once=True)
        row = cw.outbox.find(reference)
        assert row.state == ChangeState.DELIVERED, row.note_error
    assert copies_on_sandbox(sb, reference)[0] == 1  # found on the ticket, never posted twice


def test_the_default_waits_a_minute(app):
    with app.app_context():
        assert OutboxWorker(cw_of(app).outbox).doubt_seconds == 60.0
