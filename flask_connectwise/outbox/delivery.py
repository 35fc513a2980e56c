"""Delivering a change's steps to ConnectWise, each step at most once.

A change is one row of ``connectwise_change_log``. Its three steps (note, time entry, status)
each keep a state: ``pending`` → ``confirmed`` (done, with the remote id), ``sent`` (the outcome
is unknown: a read timeout or a 5xx after sending), or ``failed``; the status step starts as
``skipped`` when no status was asked for. Delivery runs only the steps not confirmed. The note
and the time entry carry the change's reference, so a step whose outcome is unknown is looked
up on the ticket before anything is posted again: a change never reaches a ticket twice.

A change waits for another attempt (``retrying``) after a failure that may pass: no answer, a
timeout, a 5xx, a 429, or a refusal an admin can fix (401 credentials, 403 permissions, a bad
base URL). A refusal that no retry can fix (a 400 validation error, ticket not found, an
unknown member, a status not on the ticket's board) marks the change ``failed`` at once, with
ConnectWise's reason and what to do in the step's error.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import ticketchecks
from ..client import MAX_PAGE_SIZE, ConnectWiseClient
from ..credentials import TenantSettings
from ..errors import (
    AuthenticationError,
    ConnectWiseError,
    ConnectWiseValidationError,
    ForbiddenError,
    MemberUnusableError,
    NotFoundError,
    RateLimitedError,
    StatusNotOnBoardError,
    UnavailableError,
)
from ..impersonation import Impersonation
from ..members import MemberCheck
from ..models import ChangeState, StepState, utcnow
from ..records import BoardStatus, Member, Ticket, TimeEntry
from ..wording import aside
from .outcome import (
    ADMIN_ALLOWS_OVERLAP,
    ADMIN_FIXES_CAUSE,
    ADMIN_THEN_RETRY,
    Step,
)
from .recording import reference_line

log = logging.getLogger("flask_connectwise.delivery")

#: A step's result: its new state, the remote id when done, the error in plain words.
StepUpdate = tuple[str, int | None, str | None]

#: Threads of the process-wide pool that sends a change's parallel steps. A change's first
#: step runs on the delivering thread itself, so a change takes at most two of them.
STEP_THREADS = 32

_steps_pool: ThreadPoolExecutor | None = None
_steps_lock = threading.Lock()


def steps_pool() -> ThreadPoolExecutor:
    """The long-lived pool for the steps sent in parallel (made on first use, once per process:
    a forked child makes its own, the parent's threads do not exist there)."""
    global _steps_pool
    pool = _steps_pool
    if pool is None:
        with _steps_lock:
            pool = _steps_pool
            if pool is None:
                pool = _steps_pool = ThreadPoolExecutor(
                    max_workers=STEP_THREADS, thread_name_prefix="connectwise-step"
                )
    return pool


def _forget_pool_after_fork() -> None:
    global _steps_pool, _steps_lock
    _steps_pool, _steps_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _error_text(exc: ConnectWiseError) -> str:
    return exc.message[:500]


_STEP_NAMES = frozenset(step.value for step in Step)


def _reason(exc: ConnectWiseError) -> str:
    """ConnectWise's own words: its per-field messages, else the error's message."""
    details = "; ".join(e.message for e in exc.errors if e.message)
    return (details or exc.message).strip().rstrip(".")


def _about(exc: ConnectWiseError, *fields: str) -> bool:
    """True when one of ConnectWise's field errors names one of ``fields`` (e.g. ``status/id``)."""
    return any((e.field or "").split("/")[0].casefold() in fields for e in exc.errors if e.field)


_THEN_RETRY = ADMIN_THEN_RETRY

#: The time defaults a tenant may leave unset, as :func:`failure_text` names them.
WORK_TYPE, WORK_ROLE = "work type", "work role"


def _settings_place(names: list[str]) -> str:
    """Where an administrator sets the defaults ``names``: the credentials' edit form, by
    the labels of its fields (``"Work type"``, ``"Work role"``)."""
    labels = " and ".join(f'"{name.capitalize()}"' for name in names)
    return f"(ConnectWise credentials → Edit → {labels})"


def unset_work_defaults(settings: TenantSettings | None) -> tuple[str, ...]:
    """The tenant's time defaults left unset (none known without its settings)."""
    if settings is None:
        return ()
    return tuple(
        name
        for name, value in ((WORK_TYPE, settings.work_type), (WORK_ROLE, settings.work_role))
        if value is None
    )


def _time_setting_hint(
    exc: ConnectWiseError, member: str | None, unset: tuple[str, ...] = ()
) -> str | None:
    """Why the tenant's ConnectWise refuses a time entry and what an administrator must set,
    when the refusal is about the work type, the work role, an overlapping entry or an API
    member; else None. A refusal of one default names every default in ``unset`` too, so
    the administrator sets them all at once (ConnectWise names only the first it lacks)."""
    if not isinstance(exc, ConnectWiseValidationError):
        return None
    words = _reason(exc).casefold()
    wants_type = _about(exc, "worktype")
    wants_role = _about(exc, "workrole") or "work role is not valid" in words
    if wants_type or wants_role:
        names = [
            name
            for name, wanted in ((WORK_TYPE, wants_type), (WORK_ROLE, wants_role))
            if wanted or name in unset
        ]
        if names == [WORK_ROLE]:
            requires = "a work role valid at the ticket's location"
        else:
            requires = " and ".join(f"a {name}" for name in names)
        return (
            f"this tenant's ConnectWise requires {requires}. An administrator must choose the "
            f"tenant's default {' and '.join(names)} {_settings_place(names)}.{_THEN_RETRY}"
        )
    if _about(exc, "timestart") and "overlaps" in words:
        return (
            "this tenant's ConnectWise refuses overlapping time entries. "
            "Sending it again will not help: enter this time by hand in ConnectWise at a free "
            f"time,{ADMIN_ALLOWS_OVERLAP}"
        )
    if _about(exc, "member") and "api member" in words:
        who = f'"{member}" is' if member else "no operator member was sent, so it used"
        return (
            f"{who} a ConnectWise API member, and this tenant's ConnectWise takes no time "
            "from API members. An administrator must link the operator to a full "
            "ConnectWise member (or set CONNECTWISE_REQUIRE_MEMBER = True so time is skipped "
            f"without one).{_THEN_RETRY}"
        )
    return None


def failure_text(
    exc: ConnectWiseError,
    *,
    step: str,
    ticket_id: int,
    member: str | None = None,
    status_id: int | None = None,
    status_name: str | None = None,
    unset: tuple[str, ...] = (),
) -> str:
    """What went wrong with one step, in plain words; for a failure that retrying cannot fix,
    or one an admin must fix, also what to do. At most 500 characters. ``unset``: the
    tenant's time defaults left unset (:func:`unset_work_defaults`), all named when
    ConnectWise refuses a time entry for lack of one."""
    what = Step(step).words if step in _STEP_NAMES else step
    if exc.permanent:
        admin = _time_setting_hint(exc, member, unset) if step == Step.TIME.value else None
        if admin is not None:
            text = f"ConnectWise refused the time entry {aside(_reason(exc))}: {admin}"
        elif isinstance(exc, NotFoundError) or (
            _about(exc, "chargetoid", "ticket", "ticketid") and not _about(exc, "member")
        ):
            text = (
                f"Ticket #{ticket_id} was not found in ConnectWise: check the ticket number "
                "and log the change again."
            )
        elif isinstance(exc, StatusNotOnBoardError) or _about(exc, "status", "statusid"):
            status = (
                f'status "{status_name}"'
                if status_name
                else (f"status {status_id}" if status_id else "the status")
            )
            text = (
                f"ConnectWise refused {status} for ticket #{ticket_id} "
                f"{aside(_reason(exc))}: pick an active status of the ticket's board and log the "
                "change again."
            )
        elif _about(exc, "member", "owner"):
            text = (
                f'ConnectWise does not accept the member "{member or "?"}" for {what} '
                f"{aside(_reason(exc))}: check that the operator is an active ConnectWise member, "
                "then log the change again."
            )
        elif isinstance(exc, ConnectWiseValidationError):
            text = (
                f"ConnectWise refused {what} {aside(_reason(exc))}. Sending it again will not help: "
                f"correct it and log the change again,{ADMIN_FIXES_CAUSE}"
            )
        else:
            text = (
                f"ConnectWise refused {what} {aside(_reason(exc))}. Sending it "
                "again will not help: tell your administrator."
            )
        return text[:500]
    if isinstance(exc, AuthenticationError):
        return (
            f"{_reason(exc)}. An admin must correct the tenant's ConnectWise credentials "
            "(then Test connection); the change is sent again automatically."
        )[:500]
    if isinstance(exc, ForbiddenError):
        return (
            f"{_reason(exc)}. An admin must give the ConnectWise API member the rights for "
            f"{what}; the change is sent again automatically."
        )[:500]
    if exc.needs_admin:
        return (
            f"{_reason(exc)}. An admin must correct the tenant's ConnectWise settings; the "
            "change is sent again automatically."
        )[:500]
    return _error_text(exc)


def _ambiguous(exc: ConnectWiseError) -> bool:
    return bool(getattr(exc, "sent", False))


@dataclass(frozen=True)
class _Job:
    reference: str
    ticket_id: int
    note_text: str
    internal: bool
    hours: float | None
    #: The note's visibility, also where the time entry's notes are copied (``add_to``).
    visibility: str = "discussion"
    email_contact: bool = False
    work_type: int | None = None
    work_role: int | None = None
    billable_option: str | None = None


#: The time step's reason when no member is known and ``CONNECTWISE_REQUIRE_MEMBER`` is on.
NO_MEMBER_REASON = "no time entry: no ConnectWise member is linked to the operator"


def visibility_of(row: Any) -> str:
    """The note's visibility: the row's own, else from its ``internal`` flag."""
    value = getattr(row, "visibility", None)
    if value in ("internal", "discussion", "resolution"):
        return str(value)
    return "internal" if row.internal else "discussion"


def _auto_status(row: Any) -> bool:
    """Whether the row asks for the tenant's status for the ticket's board."""
    return getattr(row, "auto_status", False) is True


def _status_named(statuses: list[BoardStatus], status_id: int | None) -> BoardStatus | None:
    return next((s for s in statuses if s.id == status_id), None)


class Deliverer:
    """Runs a change's outstanding steps against one tenant's client."""

    def __init__(
        self,
        session: Any,
        *,
        members: MemberCheck | None = None,
        require_member: bool = False,
        impersonation: Impersonation | None = None,
    ) -> None:
        self._session = session
        #: Sends the note and time entry with the checked member's own keys (``None``: the
        #: tenant's API keys); the status update always uses the API keys.
        self._impersonation = impersonation
        self._writer: ConnectWiseClient | None = None
        self._writer_refused = False
        #: Checks the change's member before anything is written (``None``: not checked).
        self._members = members
        #: With no member, skip the time entry instead of billing the API member.
        self._require_member = require_member
        #: The longest ``Retry-After`` ConnectWise asked for during the last delivery.
        self.retry_after: float | None = None
        #: True when a step failed in a way no retry can fix (the change is then ``failed``).
        self.permanent = False
        self._member: str | Member | None = None
        self._member_failure: ConnectWiseError | None = None
        #: Steps committed "sent" with the change itself before anything was sent (not in doubt).
        self._marked: frozenset[str] = frozenset()
        self._ticket_id = 0
        self._status_id: int | None = None
        self._status_name: str | None = None
        #: The tenant's time defaults left unset, named in a refusal for lack of one.
        self._unset: tuple[str, ...] = ()

    def _failed(self, exc: ConnectWiseError, *, step: str, in_doubt: bool = False) -> StepUpdate:
        """The step's state after ``exc``: ``sent`` while a copy may exist on the ticket
        (the outcome is unknown, or an earlier attempt was already in doubt), else ``failed``.

        A permanent refusal (validation, ticket not found...) marks the whole change as
        needing attention; a step in doubt stays ``sent`` even then, so a later manual retry
        still looks for it on the ticket first.
        """
        if isinstance(exc, RateLimitedError) and exc.retry_after:
            self.retry_after = max(self.retry_after or 0.0, exc.retry_after)
        if exc.permanent:
            self.permanent = True
        doubt = in_doubt or _ambiguous(exc)
        member = self._member.identifier if isinstance(self._member, Member) else self._member
        text = failure_text(
            exc,
            step=step,
            ticket_id=self._ticket_id,
            member=member,
            status_id=self._status_id,
            status_name=self._status_name,
            unset=self._unset,
        )
        return (StepState.SENT if doubt else StepState.FAILED), None, text

    def _unsent(self, exc: ConnectWiseError, *, step: str, in_doubt: bool) -> StepUpdate:
        """Like :meth:`_failed` for a step that was not sent because a look-up before it
        failed: only an earlier doubt keeps it ``sent``."""
        _, _, text = self._failed(exc, step=step)
        return (StepState.SENT if in_doubt else StepState.FAILED), None, text

    def _stop(self, row: Any, steps: list[str], exc: ConnectWiseError, text: str | None) -> None:
        """Nothing is sent: each of ``steps`` fails with ``text`` (else the failure's words);
        a step in doubt from an earlier attempt stays ``sent``."""
        for name in steps:
            step = Step(name)
            in_doubt = step.state_of(row) == StepState.SENT and name not in self._marked
            state, _, words = self._unsent(exc, step=name, in_doubt=in_doubt)
            step.set_state(row, state)
            step.count_attempt(row)
            step.set_error(row, (text or words or "")[:500])

    def deliver(
        self,
        row: Any,
        client: ConnectWiseClient,
        *,
        settings: TenantSettings | None = None,
        board_id: int | None = None,
        commit_in_flight: bool = True,
        nothing_sent: bool = False,
    ) -> Any:
        """Run the steps not confirmed; update the row (not committed) and return it.

        The ticket is read first and the tenant's rules applied before anything is written: a
        ticket of a company the tenant does not serve, or a member ConnectWise would not
        accept, fails the change with nothing written; a time entry that cannot succeed
        (closed ticket, a status that forbids time, no member while one is required) and a
        status the ticket's board lacks are ``skipped`` with the reason as their error.
        ``settings`` gives the work type and role, billable option, e-mail contact and the
        board -> status map. With ``commit_in_flight`` the steps about to be sent are first
        committed as ``sent``, so a process that dies mid-call never leads to a blind repeat.
        ``nothing_sent``: the caller committed the row with its steps already ``sent`` (the
        change's own first commit, :meth:`Outbox.log_change`) and nothing has left since: those
        steps are not in doubt and need no commit of their own before they go out.
        """
        self._ticket_id, self._status_id = row.ticket_id, row.status_id
        self._status_name = None
        self._unset = unset_work_defaults(settings)
        self.permanent = False
        self._member_failure = None
        self._marked = frozenset(
            step.value for step in Step if nothing_sent and step.state_of(row) == StepState.SENT
        )
        note_in_doubt = row.note_state == StepState.SENT and "note" not in self._marked
        time_in_doubt = row.time_state == StepState.SENT and "time" not in self._marked
        todo: list[str] = []
        if row.note_state != StepState.CONFIRMED:
            todo.append("note")
        if row.time_state not in StepState.FINISHED and row.hours:
            todo.append("time")
        elif row.time_state != StepState.CONFIRMED:
            row.time_state = StepState.SKIPPED
        status_pending = row.status_state not in StepState.FINISHED and bool(
            row.status_id or _auto_status(row)
        )
        if not todo and not status_pending:
            return self._settle(row)
        waiting = todo + (["status"] if status_pending else [])
        member: str | Member | None = row.member or None
        if "time" in todo and not time_in_doubt and not member and self._require_member:
            # No member: no time billed to the API member (the note still goes out).
            todo.remove("time")
            row.time_state, row.time_error = StepState.SKIPPED, NO_MEMBER_REASON
        limited = settings is not None and settings.company_ids is not None
        # Accepted unchecked before submit (ConnectWise slow or down): read before writing.
        unverified = not getattr(row, "ticket_verified", True)
        ticket: Ticket | None = None
        statuses: list[BoardStatus] = []
        if status_pending or "time" in todo or ((limited or unverified) and todo):
            # The ticket, read once: whose it is, whether it takes time, its board's statuses.
            try:
                ticket = client.known_ticket(row.ticket_id) or client.get_ticket(row.ticket_id)
                statuses = client.board_statuses(ticket.board_id) if ticket.board_id else []
            except ConnectWiseError as exc:
                # An unverified ticket that does not exist: a permanent failure saying so.
                self._stop(row, waiting, exc, None)
                return self._settle(row)
            board_id = ticket.board_id
            if unverified:
                row.ticket_verified = True
        refusal = (
            ticketchecks.company_refusal(ticket, settings)
            if ticket is not None and settings is not None
            else None
        )
        if refusal:
            # Our own check, not ConnectWise's: retrying cannot help (no Retry is offered).
            # The field's and the API's wording (ticketchecks), said the same way here.
            self._stop(row, waiting, ConnectWiseValidationError(refusal, status=400), refusal)
            return self._settle(row)
        if member and todo:
            try:
                member = self._checked_member(row.tenant_id, str(member), client)
            except MemberUnusableError as exc:
                self._member = member
                self._stop(row, waiting, exc, self._failed(exc, step="the change")[2])
                return self._settle(row)
        self._member = member
        self._writer, self._writer_refused = None, False
        if self._impersonation is not None and isinstance(member, Member) and todo:
            try:
                self._writer = self._impersonation.writer(row.tenant_id, member)
            except ConnectWiseError as exc:
                # No token, no write as the member: the note and time wait (status goes on).
                self._stop(row, list(todo), exc, exc.message)
                todo.clear()
        current = _status_named(statuses, ticket.status_id) if ticket is not None else None
        target: BoardStatus | None = None
        if status_pending and ticket is not None:
            target, reason = self._target_status(row, settings, ticket, statuses)
            if target is None:
                row.status_state, row.status_error = StepState.SKIPPED, reason
                status_pending = False
            else:
                row.status_id = target.id
                self._status_id, self._status_name = target.id, target.name
        status_first = False
        if "time" in todo and not time_in_doubt and ticket is not None:
            skip: str | None = None
            if ticket.closed or (current is not None and current.closed):
                skip = f"no time entry: ticket #{ticket.id} is closed"
            elif current is not None and not current.time_entry_allowed:
                if target is not None and target.time_entry_allowed and not target.inactive:
                    status_first = True  # the new status takes time: set it before the entry
                else:
                    skip = (
                        f"no time entry: status {current.name or current.id} does not allow "
                        "time entries"
                    )
            if skip:
                todo.remove("time")
                row.time_state, row.time_error = StepState.SKIPPED, skip
        status_tried = False
        if status_first and status_pending:
            status_tried = True
            row.status_attempts += 1
            row.status_state, row.status_error = self._status(
                client, row.ticket_id, row.status_id, board_id
            )
            if row.status_state != StepState.CONFIRMED:
                todo.remove("time")
                row.time_state = StepState.SKIPPED
                row.time_error = (
                    f"no time entry: status {current.name if current else '?'} does not "
                    "allow time entries"
                )
        if todo and commit_in_flight and not self._marked.issuperset(todo):
            # Recovery point: a crash from here on leaves the steps "sent", so the next
            # attempt looks for them on the ticket before posting again. (Steps the change's
            # own commit recorded "sent" are there already: the row still says so.)
            for name in todo:
                Step(name).set_state(row, StepState.SENT)
            self._session.commit()
        if todo:
            # Worker threads must not touch the ORM row (its session is not theirs).
            job = _Job(
                row.reference,
                row.ticket_id,
                row.note_text,
                bool(row.internal),
                row.hours,
                visibility=visibility_of(row),
                email_contact=bool(settings and settings.email_contact),
                **ticketchecks.work_defaults(settings),
            )
            steps: dict[str, Callable[[], StepUpdate]] = {
                "note": lambda: self._note(job, client, lookup=note_in_doubt),
                "time": lambda: self._time(job, client, lookup=time_in_doubt),
            }
            # The new status accepts time entries: all three go out at once.
            together = (
                status_pending
                and not status_tried
                and target is not None
                and not target.inactive
                and target.time_entry_allowed
            )
            # The other steps on the process's long-lived pool, each in a copy of this context
            # (the rate limit's per-call gate, and any call deadline, hold for their calls too);
            # the first step here, on this thread.
            pool = steps_pool()
            first, *rest = todo
            futures: dict[str, Future[StepUpdate]] = {
                name: pool.submit(contextvars.copy_context().run, steps[name]) for name in rest
            }
            status_future: Future[tuple[str, str | None]] | None = None
            if together:
                status_future = pool.submit(
                    contextvars.copy_context().run,
                    self._status,
                    client,
                    job.ticket_id,
                    row.status_id,
                    board_id,
                )
            try:
                results = {first: contextvars.copy_context().run(steps[first])}
            finally:
                # Even when this step raised: nothing of this change is still on the wire after.
                outstanding: list[Future[Any]] = [*futures.values()]
                if status_future is not None:
                    outstanding.append(status_future)
                wait(outstanding)
            results.update((name, future.result()) for name, future in futures.items())
            if status_future is not None:
                status_tried = True
                row.status_attempts += 1
                row.status_state, row.status_error = status_future.result()
            for name, (state, remote_id, error) in results.items():
                step = Step(name)
                step.set_state(row, state)
                step.count_attempt(row)
                step.set_error(row, error)
                if remote_id is not None:
                    step.set_remote_id(row, remote_id)
        if status_pending and not status_tried:
            row.status_attempts += 1
            row.status_state, row.status_error = self._status(
                client, row.ticket_id, row.status_id, board_id
            )
        if self._writer_refused and self._impersonation and isinstance(member, Member):
            self._impersonation.forget(row.tenant_id, member)  # a new token next time
        return self._settle(row)

    def _checked_member(self, tenant_id: str, member: str, client: ConnectWiseClient) -> Any:
        """The member to write as: checked by :class:`MemberCheck` when there is one (an
        e-mail address resolved to its member). A failure to reach ConnectWise is kept in
        ``_member_failure``: the note and time entry wait for the next attempt."""
        try:
            if self._members is not None:
                return self._members.check(tenant_id, member)
            if "@" in member:
                return client.find_member(member) or member
        except MemberUnusableError:
            raise
        except ConnectWiseError as exc:
            if not exc.permanent:
                # Sending the raw e-mail would be refused as an unknown member, a
                # permanent failure born of a passing one: wait for the next attempt.
                self._member_failure = exc
        return member

    @staticmethod
    def _target_status(
        row: Any,
        settings: TenantSettings | None,
        ticket: Ticket,
        statuses: list[BoardStatus],
    ) -> tuple[BoardStatus | None, str | None]:
        """The status to set on ``ticket``, or ``None`` and why it is left as is."""
        board = ticket.board or (f"board {ticket.board_id}" if ticket.board_id else "no board")
        if _auto_status(row):
            choice = settings.status_for_board(ticket.board_id) if settings else None
            if choice is not None:
                found = _status_named(statuses, choice.status_id)
                if found is None:
                    return None, (
                        f"status left as is: {choice.status_label} is not on board {board}"
                    )
                return found, None
            legacy = settings.default_status_id if settings else None
            found = _status_named(statuses, legacy)
            if found is not None and not found.inactive:
                return found, None
            return None, f"status left as is: no status set for board {board}"
        found = _status_named(statuses, row.status_id)
        if found is None:
            named = None
            if settings is not None:
                named = next(
                    (
                        c.status_name
                        for c in settings.board_statuses
                        if c.status_id == row.status_id
                    ),
                    None,
                )
            what = named or f"Status {row.status_id}"
            return None, f"status left as is: {what} is not on board {board}"
        return found, None

    def _settle(self, row: Any) -> Any:
        """Set the change's state from its steps' and log it."""
        states = {row.note_state, row.time_state, row.status_state}
        if states <= StepState.FINISHED:
            row.state = ChangeState.DELIVERED
        else:
            # A permanent refusal needs a person: no automatic retry.
            row.state = ChangeState.FAILED if self.permanent else ChangeState.RETRYING
        row.updated_at = utcnow()
        log.log(
            logging.WARNING if row.state == ChangeState.FAILED else logging.INFO,
            {
                ChangeState.DELIVERED: "connectwise change delivered",
                ChangeState.FAILED: "connectwise change refused; needs attention",
            }.get(row.state, "connectwise change incomplete"),
            extra={
                "cw_change": row.reference,
                "cw_tenant": row.tenant_id,
                "cw_ticket": row.ticket_id,
                "cw_note": row.note_state,
                "cw_time": row.time_state,
                "cw_status": row.status_state,
            },
        )
        return row

    def _status(
        self, client: ConnectWiseClient, ticket_id: int, status_id: int, board_id: int | None
    ) -> tuple[str, str | None]:
        try:
            client.update_status(ticket_id, status_id, board_id=board_id)
        except ConnectWiseError as exc:
            # An absolute PATCH is safe to send again: never "in doubt".
            return StepState.FAILED, self._failed(exc, step="status")[2]
        return StepState.CONFIRMED, None

    def _note(self, row: _Job, client: ConnectWiseClient, *, lookup: bool) -> StepUpdate:
        marker = reference_line(row.reference)
        try:
            if lookup:
                for note in client.notes(row.ticket_id, containing=row.reference):
                    if marker in note.text:
                        return StepState.CONFIRMED, note.id, None
            if self._member_failure is not None:
                return self._unsent(self._member_failure, step="note", in_doubt=lookup)
            note = (self._writer or client).add_note(
                row.ticket_id,
                f"{row.note_text}\n\n{marker}",
                member=self._member,
                visibility=row.visibility,
                email_contact=row.email_contact,
            )
        except ConnectWiseError as exc:
            self._writer_refused |= self._writer is not None and exc.status == 401
            return self._failed(exc, step="note", in_doubt=lookup)
        return StepState.CONFIRMED, note.id, None

    def _add_time(
        self, row: _Job, client: ConnectWiseClient, marker: str, *, start: datetime | None = None
    ) -> TimeEntry:
        return (self._writer or client).add_time_entry(
            row.ticket_id,
            hours=float(row.hours or 0),
            member=self._member,
            notes=f"{row.note_text[:900]}\n\n{marker}",
            start=start,
            work_type=row.work_type,
            work_role=row.work_role,
            billable_option=row.billable_option,
            add_to=row.visibility,
        )

    def _free_start(
        self, exc: ConnectWiseValidationError, row: _Job, client: ConnectWiseClient
    ) -> datetime | None:
        """Where the entry can start when the tenant refuses overlapping time entries: the
        latest free slot of its length that ends at or before now (time logged is time
        already spent, never time to come), found by stepping back from now past the member's
        entries. ``None`` when the refusal is about something else, nothing overlaps, or no
        such slot starts within the last day."""
        if not (_about(exc, "timestart", "timeend") and "overlap" in _reason(exc).casefold()):
            return None
        if not self._member:
            return None
        duration = timedelta(hours=float(row.hours or 0))
        now = datetime.now(UTC).replace(microsecond=0)
        floor = now - timedelta(days=1)
        try:
            entries = client.member_time_entries_after(self._member, floor, limit=MAX_PAGE_SIZE)
        except ConnectWiseError:
            return None
        taken = [
            (e.start.astimezone(UTC), e.end.astimezone(UTC))
            for e in entries
            if e.start is not None and e.end is not None
        ]
        end = now
        while end - duration >= floor:
            start = end - duration
            blocking = [s for s, e in taken if s < end and e > start]
            if not blocking:
                break
            end = min(blocking)
        else:
            return None
        if end == now:
            return None  # nothing of the member's overlaps: the refusal is not ours to place
        log.info(
            "connectwise time entry moved to the member's latest free slot (overlap refused)",
            extra={"cw_change": row.reference, "cw_ticket": row.ticket_id},
        )
        return start

    def _time(self, row: _Job, client: ConnectWiseClient, *, lookup: bool) -> StepUpdate:
        marker = reference_line(row.reference)
        try:
            if lookup:
                for entry in client.time_entries(row.ticket_id, containing=row.reference):
                    if entry.notes and marker in entry.notes:
                        return StepState.CONFIRMED, entry.id, None
            if self._member_failure is not None:
                return self._unsent(self._member_failure, step="time", in_doubt=lookup)
            placed: str | None = None
            try:
                entry = self._add_time(row, client, marker)
            except ConnectWiseValidationError as exc:
                start = self._free_start(exc, row, client)
                if start is None:
                    raise
                try:
                    entry = self._add_time(row, client, marker, start=start)
                    placed = self._placed_words(start, row)
                except ConnectWiseValidationError as again:
                    if self._free_start(again, row, client) is None:
                        raise
                    # Another entry of the member landed meanwhile: try again later.
                    raise UnavailableError(
                        "the member's time sheet changed while the entry was placed",
                        sent=False,
                    ) from again
        except ConnectWiseError as exc:
            self._writer_refused |= self._writer is not None and exc.status == 401
            return self._failed(exc, step="time", in_doubt=lookup)
        return StepState.CONFIRMED, entry.id, placed

    def _placed_words(self, start: datetime, row: _Job) -> str:
        """Where an entry moved clear of the member's other entries went (kept with the done
        time step, so the outcome and the change log say it): ``placed 05:32–05:47 UTC,
        where jdoe's time sheet was free``."""
        end = start + timedelta(hours=float(row.hours or 0))
        member = self._member.identifier if isinstance(self._member, Member) else self._member
        return f"placed {start:%H:%M}–{end:%H:%M} UTC, where {member}'s time sheet was free"
