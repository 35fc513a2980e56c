"""Delivery off the request path, on the queue the host already runs (``CONNECTWISE_DELIVERY``).

``state().dispatcher`` (also ``cw.dispatcher``) starts the delivery of a committed change and
lets the caller wait a bounded time for its outcome::

    handle = state().dispatcher.submit(change_id)   # returns at once
    outcome = handle.wait(1.0)                      # Outcome, or None if not finished yet

Modes:

* ``"thread"`` (default: one process, the demo, small apps): a bounded thread pool per app
  (``CONNECTWISE_DELIVERY_THREADS``) delivers each change in a fresh app context, and a daemon
  sweep (every ``CONNECTWISE_SWEEP_SECONDS``, started at the first submit or request) claims due
  retries like ``flask connectwise deliver`` does, so "will be retried" holds with nothing else
  running. It stops at interpreter exit.
* ``"celery"``: one task per change id, ``flask_connectwise.deliver_change``, sent to the host's
  Celery app (``CONNECTWISE_CELERY_APP``, or the one given to ``cw.init_celery``); see
  :mod:`flask_connectwise.dispatch.celery`.
* ``"rq"``: one job per change id, :func:`flask_connectwise.dispatch.rq.deliver_change`, on the
  host's RQ queue (``CONNECTWISE_RQ_QUEUE``); see :mod:`flask_connectwise.dispatch.rq`.
* ``"worker"``: nothing is enqueued; ``flask connectwise deliver`` processes claim the change.

In every mode the outbox row is the source of truth: a task lost is claimed by the sweep or a
worker, a task duplicated finds the row delivered or leased and writes nothing
(:func:`deliver_change_in`). Retries follow the outbox's backoff (``next_attempt_at``), never
the queue's own retry.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from flask import Flask

from ..faults import log_fields
from ..outbox import Outcome
from .core import deliver_change_in, finished_outcome, new_worker, poll, throttle_for

log = logging.getLogger("flask_connectwise.dispatch")

#: The values ``CONNECTWISE_DELIVERY`` accepts.
MODES = ("thread", "celery", "rq", "worker")

__all__ = [
    "MODES",
    "Dispatcher",
    "Handle",
    "PollingHandle",
    "QueueDispatcher",
    "ThreadDispatcher",
    "WorkerDispatcher",
    "create_dispatcher",
    "deliver_change_in",
    "finished_outcome",
    "throttle_for",
]


class Handle:
    """A submitted change: :meth:`wait` for its outcome."""

    def __init__(self, app: Flask, change_id: int) -> None:
        self.app = app
        self.change_id = change_id

    def wait(self, timeout: float) -> Outcome | None:
        """The outcome if the delivery finished within ``timeout`` seconds, else ``None``.
        Never raises for delivery errors (they are logged)."""
        return poll(self.app, self.change_id, timeout)


#: Waits by reading the row (celery, rq, worker).
PollingHandle = Handle


class FutureHandle(Handle):
    """A change delivered by the thread pool: the future first, then the row."""

    def __init__(self, app: Flask, change_id: int, future: Future[Outcome | None]) -> None:
        super().__init__(app, change_id)
        self.future = future

    def wait(self, timeout: float) -> Outcome | None:
        import time

        start = time.monotonic()
        try:
            outcome = self.future.result(timeout=max(0.0, timeout))
        except FutureTimeout:
            return None
        except Exception as exc:  # deliver_change_in never raises; belt and braces
            log.error("connectwise delivery job failed", extra=log_fields(exc))
            return None
        if outcome is not None:
            return outcome
        # Nothing attempted by this job (someone else holds the change...): read the row.
        return poll(self.app, self.change_id, timeout - (time.monotonic() - start))


class Dispatcher:
    """Starts the delivery of committed changes (``CONNECTWISE_DELIVERY`` picks the kind)."""

    mode = "worker"

    def __init__(self, app: Flask) -> None:
        self.app = app

    def submit(self, change_id: int) -> Handle:
        """Start delivering the committed change ``change_id`` off the calling thread."""
        return Handle(self.app, change_id)

    def start(self) -> None:
        """Start background work, if the mode has any (idempotent)."""

    def close(self, *, wait: bool = False) -> None:
        """Stop background work, if any (idempotent); ``wait``: until started work is done."""


class WorkerDispatcher(Dispatcher):
    """``"worker"``: nothing is enqueued; ``flask connectwise deliver`` claims the change."""


class QueueDispatcher(Dispatcher):
    """Enqueues one task per change id with ``enqueue(change_id)`` (celery, rq).

    A periodic sweep in the web process (every ``CONNECTWISE_SWEEP_SECONDS``; 0 turns it off)
    enqueues the changes that are due again: retries whose ``next_attempt_at`` (the outbox's
    backoff) has come, and changes whose task message was lost. It claims nothing and
    delivers nothing itself; a duplicate message is harmless (the task takes the row's lease
    and skips a change that is finished, not due or leased).
    """

    def __init__(self, app: Flask, mode: str, enqueue: Any, *, sweep_seconds: float = 15.0) -> None:
        super().__init__(app)
        self.mode = mode
        self._enqueue = enqueue
        self.sweep_seconds = float(sweep_seconds)
        self._lock = threading.Lock()
        self._sweep: threading.Thread | None = None
        self._stop = threading.Event()

    def submit(self, change_id: int) -> Handle:
        self.start()
        self._send(change_id)
        return Handle(self.app, change_id)

    def _send(self, change_id: int) -> bool:
        try:
            self._enqueue(int(change_id))
        except Exception as exc:
            # The row stays queued: the next sweep (or a worker) enqueues it again.
            log.error(
                "connectwise: could not enqueue a change; it stays queued",
                extra=log_fields(exc, cw_change_id=change_id, cw_delivery=self.mode),
            )
            return False
        return True

    def start(self) -> None:
        """Start the sweep that enqueues due changes (once; not when the period is 0)."""
        if self._sweep is not None or self._stop.is_set() or self.sweep_seconds <= 0:
            return
        with self._lock:
            if self._sweep is not None or self._stop.is_set():
                return
            self._sweep = threading.Thread(
                target=_sweep_loop,
                args=(weakref.ref(self), self._stop, self.sweep_seconds),
                name=f"connectwise-{self.mode}-sweep",
                daemon=True,
            )
            self._sweep.start()
        _running.add(self)

    def sweep_once(self) -> int:
        """Enqueue every change that is due now; return how many were enqueued. Errors are
        logged, never raised."""
        try:
            from ..current import state

            with self.app.app_context():  # its teardown ends the session
                due = state(self.app).outbox.due_ids()
        except Exception as exc:
            log.warning(
                "connectwise sweep failed; trying again at the next period",
                extra=log_fields(exc, cw_delivery=self.mode),
            )
            return 0
        return sum(self._send(change_id) for change_id in due)

    def close(self, *, wait: bool = False) -> None:
        """Stop the sweep (idempotent; enqueued tasks belong to the queue's workers)."""
        self._stop.set()
        _running.discard(self)


class ThreadDispatcher(Dispatcher):
    """``"thread"``: a bounded thread pool, and a periodic sweep of due retries."""

    mode = "thread"

    def __init__(self, app: Flask, *, threads: int = 4, sweep_seconds: float = 15.0) -> None:
        super().__init__(app)
        self.threads = max(1, int(threads))
        self.sweep_seconds = float(sweep_seconds)
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._sweep: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False

    def submit(self, change_id: int) -> Handle:
        self.start()
        executor = self._pool()
        if executor is None:  # closed (interpreter exit): the sweep of the next run delivers it
            return Handle(self.app, change_id)
        future = executor.submit(deliver_change_in, self.app, int(change_id))
        return FutureHandle(self.app, change_id, future)

    def _pool(self) -> ThreadPoolExecutor | None:
        with self._lock:
            if self._closed:
                return None
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.threads, thread_name_prefix="connectwise-deliver"
                )
            return self._executor

    def start(self) -> None:
        """Start the sweep (once; not when ``CONNECTWISE_SWEEP_SECONDS`` is 0)."""
        if self._sweep is not None or self._closed or self.sweep_seconds <= 0:
            return
        with self._lock:
            if self._sweep is not None or self._closed:
                return
            self._sweep = threading.Thread(
                target=_sweep_loop,
                args=(weakref.ref(self), self._stop, self.sweep_seconds),
                name="connectwise-sweep",
                daemon=True,
            )
            self._sweep.start()
        _running.add(self)

    def sweep_once(self) -> int:
        """Claim and deliver every due change once (what the sweep does each period); return
        how many were claimed. Errors are logged, never raised."""
        worker = None
        try:
            with self.app.app_context():
                worker = new_worker(self.app)
                claimed = 0
                while not self._stop.is_set():
                    summary = worker.run_once()
                    claimed += summary.claimed
                    if not summary.claimed:
                        break
                return claimed
        except Exception as exc:
            log.warning(
                "connectwise sweep failed; trying again at the next period",
                extra=log_fields(exc),
            )
            if worker is not None:
                try:
                    with self.app.app_context():
                        worker.outbox.session.rollback()
                        worker.release_leases()
                except Exception:  # noqa: S110 - the leases run out by themselves
                    pass
            return 0

    def close(self, *, wait: bool = False) -> None:
        """Stop the sweep and let the pool finish what it started (idempotent); with ``wait``,
        return only once the deliveries already started are done."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        self._stop.set()
        if executor is not None:
            executor.shutdown(wait=wait)
        _running.discard(self)


def _sweep_loop(
    ref: weakref.ref[ThreadDispatcher] | weakref.ref[QueueDispatcher],
    stop: threading.Event,
    period: float,
) -> None:
    # Holds the dispatcher weakly: an app that is gone stops its sweep.
    while not stop.wait(period):
        dispatcher = ref()
        if dispatcher is None:
            return
        dispatcher.sweep_once()
        del dispatcher


#: Dispatchers whose sweep runs (closed at interpreter exit).
_running: weakref.WeakSet[Dispatcher] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for dispatcher in list(_running):
        dispatcher.close()


def create_dispatcher(app: Flask) -> Dispatcher:
    """The dispatcher ``app.config["CONNECTWISE_DELIVERY"]`` asks for."""
    config = app.config
    mode = str(config.get("CONNECTWISE_DELIVERY") or "thread").strip().lower()
    if mode not in MODES:
        raise RuntimeError(f"CONNECTWISE_DELIVERY must be one of {', '.join(MODES)}; got {mode!r}")
    sweep = float(config.get("CONNECTWISE_SWEEP_SECONDS") or 0)
    if mode == "thread":
        return ThreadDispatcher(
            app, threads=int(config.get("CONNECTWISE_DELIVERY_THREADS") or 4), sweep_seconds=sweep
        )
    if mode == "celery":
        from .celery import enqueuer as celery_enqueuer

        return QueueDispatcher(app, "celery", celery_enqueuer(app), sweep_seconds=sweep)
    if mode == "rq":
        from .rq import enqueuer as rq_enqueuer

        return QueueDispatcher(app, "rq", rq_enqueuer(app), sweep_seconds=sweep)
    return WorkerDispatcher(app)
