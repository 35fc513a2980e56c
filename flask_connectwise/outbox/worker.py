"""The outbox worker: delivers changes that are pending or waiting for a retry.

Several workers (threads, processes or machines) may run at once; a change is claimed by one
worker at a time: ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, and a lease column
(``lease_owner``/``lease_until``, set by a conditional UPDATE) elsewhere. A claim is a lease
on both, so a worker that dies leaves its changes to the others once the lease ends.

Failed changes wait with full-jitter exponential backoff (:class:`~flask_connectwise.retry.RetryPolicy`); a 429's ``Retry-After`` pauses the
whole tenant, in every process when there is a Redis (the per-tenant rate limits live in
:mod:`flask_connectwise.ratelimit`). A change ConnectWise refused for good (see :mod:`flask_connectwise.outbox.delivery`),
or still not delivered after the give-up age, is marked ``failed`` and ``change_failed`` fires
with ``final=True``; a failed change is never claimed again (an admin may retry it).

One bad change never stops the worker: an unexpected exception while delivering it (a bug, a
tenant's stored settings no request can carry) sets that change aside, marked ``failed`` with
a plain-words reason, and the others go on. Nor does a database outage: the worker rolls back,
waits with backoff, and goes on once the database is back.

Changes of a tenant whose feature flag is off are not claimed at all: they stay queued,
untouched (no attempt counted), and flow as soon as the flag is on again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..client import call_gate
from ..faults import error_name, log_fields, outage_cause
from ..models import ChangeState, StepState, utcnow
from ..ratelimit import TenantThrottle as TenantThrottle  # re-exported: the old home
from ..ratelimit import Throttle, for_app
from ..retry import RetryPolicy
from .outbox import LEASE_SECONDS, Outbox
from .outcome import Step

#: Default of ``CONNECTWISE_DOUBT_SECONDS``.
DOUBT_SECONDS = 60.0

log = logging.getLogger("flask_connectwise.worker")


@dataclass
class RunSummary:
    """What one pass of the worker did."""

    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    gave_up: int = 0
    deferred: int = 0
    #: Claimed, then left untouched because the tenant's feature flag was turned off.
    paused: int = 0
    #: Marked failed (needs attention) after an unexpected error; never claimed again.
    set_aside: int = 0
    #: Times a batch failed (the database unavailable...) and the worker waited to try again.
    setbacks: int = 0
    #: Why :meth:`OutboxWorker.run` stopped before its work was done ("" when it did not).
    stopped: str = ""

    def __str__(self) -> str:
        text = (
            f"claimed {self.claimed}: delivered {self.delivered}, waiting to retry "
            f"{self.retrying}, gave up {self.gave_up}, deferred by rate limits {self.deferred}"
        )
        if self.paused:
            text += f", left for integration off {self.paused}"
        if self.set_aside:
            text += f", set aside {self.set_aside} (needs attention)"
        if self.setbacks:
            text += f", waited out {self.setbacks} database or batch errors"
        return text


class OutboxWorker:
    """Claims due changes in batches and delivers them through the :class:`Outbox`."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        batch_size: int = 20,
        lease_seconds: float = LEASE_SECONDS,
        give_up_after: timedelta = timedelta(hours=24),
        backoff_base: float = 5.0,
        backoff_cap: float = 3600.0,
        throttle: Throttle | None = None,
        worker_id: str | None = None,
        rng: random.Random | None = None,
        outage_backoff: float = 0.5,
        outage_backoff_cap: float = 30.0,
        once_attempts: int = 5,
        doubt_seconds: float | None = None,
        token_wait: float = 0.0,
    ) -> None:
        self.outbox = outbox
        #: Longest a change waits here for its tenant's rate limit before it is put off: 0 for
        #: a batch (the other tenants' changes go on), a few seconds for one change's own job
        #: (a task or the thread pool), which nothing else would pick up before the next sweep.
        self.token_wait = token_wait
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.give_up_after = give_up_after
        #: Least wait before a step whose outcome is unknown is looked for on the ticket.
        self.doubt_seconds = float(
            outbox.app.config.get("CONNECTWISE_DOUBT_SECONDS", DOUBT_SECONDS)
            if doubt_seconds is None
            else doubt_seconds
        )
        #: The per-tenant rate limit (default: the app's, shared through Redis when there is
        #: one; see :mod:`flask_connectwise.ratelimit`).
        self.throttle: Throttle = throttle or self._default_throttle(outbox)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._rng = rng or random.Random()  # noqa: S311 - backoff jitter, not a secret
        #: First and largest backoff window before a failed change's next attempt, in seconds.
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        #: First and longest wait after a failed batch (the database down...), in seconds.
        self.outage_backoff = outage_backoff
        self.outage_backoff_cap = outage_backoff_cap
        #: ``run(once=True)`` gives up after this many failed batches in a row.
        self.once_attempts = once_attempts
        #: How the worker waits for a token between the calls of one change (tests replace it).
        self._sleep: Callable[[float], None] = time.sleep

    @staticmethod
    def _default_throttle(outbox: Outbox) -> Throttle:
        app = getattr(outbox, "app", None)
        if app is None or not hasattr(app, "extensions"):
            return TenantThrottle()
        return for_app(app)

    @property
    def _model(self) -> Any:
        return self.outbox.models.ChangeLog

    @property
    def _session(self) -> Any:
        return self.outbox.session

    @property
    def retry_policy(self) -> RetryPolicy:
        """How long a change that may still go through waits before its next attempt."""
        return RetryPolicy(base=self.backoff_base, cap=self.backoff_cap, rng=self._rng)

    def tenants_off(self, now: datetime) -> list[str]:
        """Tenants with changes due whose feature flag is off (their changes are not claimed)."""
        return self.outbox.tenants_off(now)

    def claim(self) -> list[int]:
        """Lease up to ``batch_size`` due changes to this worker; return their ids (see
        :meth:`Outbox.claim`). Changes of tenants whose feature flag is off are left alone."""
        return self.outbox.claim(
            self.worker_id,
            self.batch_size,
            seconds=self.lease_seconds,
            skip_tenants=self.tenants_off(utcnow()),
        )

    def run_once(
        self,
        *,
        progress: Callable[[int], None] | None = None,
        summary: RunSummary | None = None,
    ) -> RunSummary:
        """Claim one batch and deliver it (counting into ``summary`` when given).

        An unexpected exception while delivering one change sets that change aside
        (:meth:`set_aside`) and the batch goes on. A database outage is raised: :meth:`run`
        waits and tries again.
        """
        summary = summary if summary is not None else RunSummary()
        ids = self.claim()
        summary.claimed += len(ids)
        for change_id in ids:
            try:
                row = self._session.get(self._model, change_id)
                if row is None or row.lease_owner != self.worker_id:
                    continue
                self._deliver_one(row, summary)
            except Exception as exc:
                if outage_cause(exc) is not None:
                    raise
                self.set_aside(change_id, exc)
                summary.set_aside += 1
            if progress:
                progress(1)
        return summary

    def set_aside(self, change_id: int, exc: BaseException) -> None:
        """Mark the change failed (needs attention) after an unexpected exception, so no
        worker meets it again; see :meth:`Outbox.set_aside`."""
        self._session.rollback()
        row = self._session.get(self._model, change_id)
        if row is not None:
            self.outbox.set_aside(row, exc, final=True, release=self.worker_id)

    def release_leases(self) -> int:
        """Give back every lease this worker holds (after a failed batch: the changes it had
        claimed are due again at once, not when the leases run out)."""
        return self.outbox.release_leases(self.worker_id)

    def _setback(self, exc: BaseException, failures: int) -> float:
        """After a failed batch: roll back, log (type and place, never the text: a database
        error's text holds SQL and its parameters) and return how long to wait."""
        with contextlib.suppress(Exception):
            self._session.rollback()
        window = min(self.outage_backoff_cap, self.outage_backoff * 2.0 ** (failures - 1))
        delay = window / 2 + self._rng.uniform(0, window / 2)
        outage = outage_cause(exc)
        log.log(
            logging.WARNING if outage is not None else logging.ERROR,
            "connectwise worker: the database is unavailable; waiting to try again"
            if outage is not None
            else "connectwise worker: a batch failed; waiting to try again",
            extra=log_fields(
                outage or exc,
                cw_worker=self.worker_id,
                cw_failures=failures,
                cw_retry_in=round(delay, 2),
            ),
        )
        return delay

    def _calls_gate(self, tenant: str) -> Callable[[], None]:
        """One token of the tenant's bucket per ConnectWise call, taken right before the call is
        sent (the first one too: a token taken before the change's database work would let
        calls bunch up on arrival), so the calls, not only the changes, stay within
        ``CONNECTWISE_RATE_LIMIT``."""

        def before_call() -> None:
            while (wait := self.throttle.wait_time(tenant)) > 0:
                self._sleep(min(wait, 1.0))

        return before_call

    def _deliver_one(self, row: Any, summary: RunSummary) -> None:
        now = utcnow()
        if not self.outbox.tenants.flag_on(row.tenant_id):
            # Turned off since the claim: give the lease back, touch nothing else.
            row.lease_owner = row.lease_until = None
            self._session.commit()
            summary.paused += 1
            return
        if now - row.created_at > self.give_up_after:
            self.outbox.give_up(row)
            summary.gave_up += 1
            return
        # Only a look (no token): each call takes its own right before it is sent.
        wait = self.throttle.peek(row.tenant_id)
        waited = 0.0
        while wait > 0 and waited + wait <= self.token_wait:
            self._sleep(wait)
            waited += wait
            wait = self.throttle.peek(row.tenant_id)
        if wait > 0:
            row.next_attempt_at = now + timedelta(seconds=wait)
            row.lease_owner = row.lease_until = None
            self._session.commit()
            summary.deferred += 1
            return
        with call_gate(self._calls_gate(row.tenant_id)):
            _, retry_after = self.outbox.deliver_leased(row, contain_errors=False)
        if retry_after:
            self.throttle.pause(row.tenant_id, retry_after)
        if row.state == ChangeState.DELIVERED:
            summary.delivered += 1
            row.next_attempt_at = None
        elif row.state == ChangeState.FAILED:
            # Refused for good (``change_failed`` fired with ``final=True``): never claimed again.
            summary.gave_up += 1
            row.next_attempt_at = None
        else:
            summary.retrying += 1
            attempts = max(step.attempts_of(row) for step in Step)
            delay = self.retry_policy.backoff(max(1, attempts), retry_after)
            if any(step.state_of(row) == StepState.SENT for step in Step):
                # A write whose answer never came may still be applied by ConnectWise (a slow
                # server finishes after our timeout): look for it only once it surely has.
                delay = max(delay, self.doubt_seconds)
            row.next_attempt_at = utcnow() + timedelta(seconds=delay)
        row.lease_owner = row.lease_until = None
        self._session.commit()

    def run(
        self,
        *,
        once: bool = False,
        idle_sleep: float = 2.0,
        stop: threading.Event | None = None,
        progress: Callable[[RunSummary], None] | None = None,
    ) -> RunSummary:
        """Deliver until nothing is due (``once``) or until ``stop`` is set.

        Never stops on an error. A change that fails unexpectedly is set aside; when a batch
        fails (the database down or restarting...), the worker rolls back, logs, waits
        (``outage_backoff`` doubling up to ``outage_backoff_cap``, with jitter), gives back its
        leases and goes on: what was queued is delivered once the database is back. With
        ``once`` it stops after ``once_attempts`` failed batches in a row and says why in the
        summary's ``stopped`` (the changes stay queued).
        """
        total = RunSummary()
        stop = stop or threading.Event()
        failures = 0
        while not stop.is_set():
            claimed_before = total.claimed
            try:
                if failures:
                    self.release_leases()
                self.run_once(summary=total)
            except Exception as exc:
                failures += 1
                total.setbacks += 1
                delay = self._setback(exc, failures)
                if once and failures >= self.once_attempts:
                    what = (
                        "the database was unavailable"
                        if outage_cause(exc) is not None
                        else f"delivery failed ({error_name(exc)})"
                    )
                    total.stopped = (
                        f"{what} {failures} times in a row; the changes stay queued. Run the "
                        "command again once the cause is fixed."
                    )
                    break
                stop.wait(delay)
                continue
            if failures:
                log.warning(
                    "connectwise worker: going again",
                    extra={"cw_worker": self.worker_id, "cw_failures": failures},
                )
                failures = 0
            if progress:
                progress(total)
            if total.claimed == claimed_before:
                if once:
                    break
                stop.wait(idle_sleep)
        return total
