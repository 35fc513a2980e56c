"""The worker takes one token of the tenant's bucket per ConnectWise call, not per change: a
change that makes three calls waits for three tokens, so N workers sharing one bucket stay within
a limit ConnectWise counts in calls (bench/chaos.py --processes)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

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

    def peek(self, tenant: str) -> float:
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
            # The first call's token, then "wait 0.25 s" once before the second call.
            return 0.25 if len(throttle_calls) == 2 else 0.0

        throttle.wait_time = refusing_after_first  # type: ignore[method-assign]
        worker.run(once=True)
    assert slept == [0.25]
    assert len(throttle_calls) == api_calls(connectwise_sandbox) + 1


class RecordingThrottle(CountingThrottle):
    """Logs each token taken and each peek, with how many requests had reached the sandbox."""

    def __init__(self, sandbox: Any, events: list[tuple[str, int]]) -> None:
        super().__init__()
        self.sandbox = sandbox
        self.events = events

    def wait_time(self, tenant: str) -> float:
        self.events.append(("token", api_calls(self.sandbox)))
        return super().wait_time(tenant)

    def peek(self, tenant: str) -> float:
        self.events.append(("peek", api_calls(self.sandbox)))
        return 0.0


def test_a_token_is_taken_right_before_its_call(tmp_path, connectwise_sandbox):
    """ConnectWise counts calls by arrival: a token taken before the change's database work
    lets calls bunch up past the limit (bench/chaos.py --rate-limit 40/1 saw 42 in one second).
    Before a change the worker only peeks; no SQL runs between a token and its call, and
    every token is spent on a call."""
    app = make_host_app(f"sqlite:///{tmp_path / 'calls.db'}")
    api = configure(app, connectwise_sandbox)
    events: list[tuple[str, int]] = []
    with app.app_context():
        cw = cw_of(app)
        row, _ = cw.outbox.record(api.tenant, TICKET, "token then call", hours=0.25, member="jdoe")
        cw.outbox.session.commit()
        change_id = row.id
        cw.client_for(api.tenant)
        connectwise_sandbox.clear_requests()
        throttle = RecordingThrottle(connectwise_sandbox, events)
        worker = quick_worker(cw.outbox, throttle=throttle)
        engine = cw.outbox.session.get_bind()

        def on_sql(*_: Any) -> None:
            events.append(("sql", api_calls(connectwise_sandbox)))

        event.listen(engine, "before_cursor_execute", on_sql)
        try:
            worker.run(once=True)
        finally:
            event.remove(engine, "before_cursor_execute", on_sql)
        assert cw.outbox.session.get(cw.models.ChangeLog, change_id).state == DELIVERED
    calls = api_calls(connectwise_sandbox)
    for i, (kind, seen) in enumerate(events):
        if kind != "token":
            continue
        # Until the call this token pays for arrives, no SQL statement runs.
        later_sql = [s for k, s in events[i + 1 :] if k == "sql"]
        assert all(s > seen for s in later_sql), (i, events)
    assert [kind for kind, _ in events].count("peek") == 1
    assert throttle.taken == calls


class EmptyBucketThrottle(CountingThrottle):
    """The tenant's bucket is empty for the first ``empty`` peeks (0.2 s to the next token)."""

    def __init__(self, empty: int) -> None:
        super().__init__()
        self.empty = empty

    def peek(self, tenant: str) -> float:
        if self.empty:
            self.empty -= 1
            return 0.2
        return 0.0


def test_one_changes_job_waits_briefly_for_a_token_where_a_batch_puts_it_off(
    tmp_path, connectwise_sandbox
):
    """A task or thread-pool job delivers one change: put off, it would wait for the next
    sweep; a batch worker puts it off and goes on with other tenants' changes."""
    from flask_connectwise.dispatch.core import TOKEN_WAIT, deliver_change_in

    app = make_host_app(f"sqlite:///{tmp_path / 'wait.db'}")
    api = configure(app, connectwise_sandbox)
    with app.app_context():
        cw = cw_of(app)
        rows = [
            cw.outbox.record(api.tenant, TICKET, note, hours=0.25, member="jdoe")[0]
            for note in ("batch: put off", "job: waits")
        ]
        cw.outbox.session.commit()
        ids = [row.id for row in rows]
        batch = quick_worker(cw.outbox, throttle=EmptyBucketThrottle(empty=1))
        slept: list[float] = []
        batch._sleep = slept.append
        assert batch.token_wait == 0.0
        batch._deliver_one(cw.outbox.session.get(cw.models.ChangeLog, ids[0]), _summary())
        assert cw.outbox.session.get(cw.models.ChangeLog, ids[0]).state != DELIVERED
        assert slept == []
    assert TOKEN_WAIT >= 1.0
    throttle = EmptyBucketThrottle(empty=2)
    import flask_connectwise.dispatch.core as core

    original = core.throttle_for
    core.throttle_for = lambda app: throttle  # type: ignore[assignment]
    try:
        outcome = deliver_change_in(app, ids[1])
    finally:
        core.throttle_for = original
    assert outcome is not None and outcome.delivered
    assert throttle.empty == 0  # it looked again after each wait


def _summary() -> Any:
    from flask_connectwise.outbox.worker import RunSummary

    return RunSummary()
