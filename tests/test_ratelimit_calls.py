"""The worker takes one token of the tenant's bucket per ConnectWise call, not per change: a
change that makes three calls waits for three tokens, so N workers sharing one bucket stay within
a limit ConnectWise counts in calls (bench/chaos.py --processes)."""

from __future__ import annotations

from typing import Any

from flask_connectwise.models import DELIVERED
from tests.hosts import cw_of, make_host_app
from tests.json_api import configure
from tests.test_worker_faults import TICKET, quick_worker


class CountingThrottle:
    """Grants every token and counts them; a 429 pause is recorded."""

    def __init__(self, refusals: int = 0) -> None:
        self.taken = 0
        self.refusals = refusals  # first answers "wait" this many times
        self.waits: list[float] = []

    def wait_time(self, tenant: str) -> float:
        if self.refusals:
            self.refusals -= 1
            return 0.25
        self.taken += 1
        return 0.0

    def pause(self, tenant: str, seconds: float) -> None:
        pass


def api_calls(sandbox: Any) -> int:
    """Every request that reached ConnectWise (the codebase discovery included)."""
    return len(sandbox.requests)


def test_each_call_of_a_change_takes_its_own_token(tmp_path, connectwise_sandbox):
    app = make_host_app(f"sqlite:///{tmp_path / 'calls.db'}")
    api = configure(app, connectwise_sandbox)
    throttle = CountingThrottle()
    with app.app_context():
        cw = cw_of(app)
        row, _ = cw.outbox.record(api.tenant, TICKET, "per-call tokens", hours=0.25, member="jdoe")
        cw.outbox.session.commit()
        change_id = row.id
        cw.client_for(api.tenant)  # built (and its codebase known) before counting
        connectwise_sandbox.clear_requests()
        worker = quick_worker(cw.outbox, throttle=throttle)
        slept: list[float] = []
        worker._sleep = slept.append
        worker.run(once=True)
        assert cw.outbox.session.get(cw.models.ChangeLog, change_id).state == DELIVERED
    calls = api_calls(connectwise_sandbox)
    assert calls >= 3  # the note, the ticket, the time entry at least
    assert throttle.taken == calls
    assert slept == []


def test_a_call_waits_for_its_token(tmp_path, connectwise_sandbox):
    app = make_host_app(f"sqlite:///{tmp_path / 'calls.db'}")
    api = configure(app, connectwise_sandbox)
    with app.app_context():
        cw = cw_of(app)
        cw.outbox.record(api.tenant, TICKET, "waits", hours=0.25, member="jdoe")
        cw.outbox.session.commit()
        cw.client_for(api.tenant)
        connectwise_sandbox.clear_requests()
        throttle = CountingThrottle()
        worker = quick_worker(cw.outbox, throttle=throttle)
        slept: list[float] = []
        worker._sleep = slept.append
        throttle_calls = []

        def refusing_after_first(tenant: str) -> float:
            throttle_calls.append(tenant)
            # The change's own token, then "wait 0.25 s" once before the second call.
            return 0.25 if len(throttle_calls) == 2 else 0.0

        throttle.wait_time = refusing_after_first  # type: ignore[method-assign]
        worker.run(once=True)
    assert slept == [0.25]
    assert len(throttle_calls) == api_calls(connectwise_sandbox) + 1
