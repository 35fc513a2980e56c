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

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..client import ConnectWiseClient
from ..errors import (
    AuthenticationError,
    ConnectWiseError,
    ConnectWiseValidationError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    StatusNotOnBoardError,
)
from ..models import ChangeState, StepState, utcnow
from ..records import Member
from .outcome import Step
from .recording import reference_line

log = logging.getLogger("flask_connectwise.delivery")

#: A step's result: its new state, the remote id when done, the error in plain words.
StepUpdate = tuple[str, int | None, str | None]


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


def failure_text(
    exc: ConnectWiseError,
    *,
    step: str,
    ticket_id: int,
    member: str | None = None,
    status_id: int | None = None,
) -> str:
    """What went wrong with one step, in plain words; for a failure that retrying cannot fix,
    or one an admin must fix, also what to do. At most 500 characters."""
    what = Step(step).words if step in _STEP_NAMES else step
    if exc.permanent:
        if isinstance(exc, NotFoundError) or (
            _about(exc, "chargetoid", "ticket", "ticketid") and not _about(exc, "member")
        ):
            text = (
                f"Ticket #{ticket_id} was not found in ConnectWise: check the ticket number "
                "and log the change again."
            )
        elif isinstance(exc, StatusNotOnBoardError) or _about(exc, "status", "statusid"):
            text = (
                f"ConnectWise refused status #{status_id} for ticket #{ticket_id} "
                f"({_reason(exc)}): pick an active status of the ticket's board and log the "
                "change again."
            )
        elif _about(exc, "member", "owner"):
            text = (
                f'ConnectWise does not accept the member "{member or "?"}" for {what} '
                f"({_reason(exc)}): check that the operator is an active ConnectWise member, "
                "then log the change again."
            )
        elif isinstance(exc, ConnectWiseValidationError):
            text = (
                f"ConnectWise refused {what} ({_reason(exc)}). Sending it again will not help: "
                "correct it and log the change again, or fix the cause in ConnectWise and "
                "press Retry."
            )
        else:
            text = (
                f"ConnectWise refused {what} (HTTP {exc.status}: {_reason(exc)}). Sending it "
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


class Deliverer:
    """Runs a change's outstanding steps against one tenant's client."""

    def __init__(self, session: Any) -> None:
        self._session = session
        #: The longest ``Retry-After`` ConnectWise asked for during the last delivery.
        self.retry_after: float | None = None
        #: True when a step failed in a way no retry can fix (the change is then ``failed``).
        self.permanent = False
        self._member: str | Member | None = None
        self._member_failure: ConnectWiseError | None = None
        self._ticket_id = 0
        self._status_id: int | None = None

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
        )
        return (StepState.SENT if doubt else StepState.FAILED), None, text

    def _unsent(self, exc: ConnectWiseError, *, step: str, in_doubt: bool) -> StepUpdate:
        """Like :meth:`_failed` for a step that was not sent because a look-up before it
        failed: only an earlier doubt keeps it ``sent``."""
        _, _, text = self._failed(exc, step=step)
        return (StepState.SENT if in_doubt else StepState.FAILED), None, text

    def deliver(
        self,
        row: Any,
        client: ConnectWiseClient,
        *,
        board_id: int | None = None,
        commit_in_flight: bool = True,
    ) -> Any:
        """Run the steps not confirmed; update the row (not committed) and return it.

        With ``commit_in_flight`` the steps about to be sent are first committed as ``sent``,
        so a process that dies mid-call never leads to a blind repeat.
        """
        self._ticket_id, self._status_id = row.ticket_id, row.status_id
        self.permanent = False
        member: str | Member | None = row.member or None
        self._member_failure = None
        if member and "@" in str(member):
            try:
                found = client.find_member(str(member))
            except ConnectWiseError as exc:
                found = None
                if not exc.permanent:
                    # Sending the raw e-mail would be refused as an unknown member, a
                    # permanent failure born of a passing one: wait for the next attempt.
                    self._member_failure = exc
            member = found or member
        self._member = member
        status_tried = False
        note_in_doubt = row.note_state == StepState.SENT
        time_in_doubt = row.time_state == StepState.SENT
        todo: list[str] = []
        if row.note_state != StepState.CONFIRMED:
            todo.append("note")
        if row.time_state not in StepState.FINISHED and row.hours:
            todo.append("time")
        elif row.time_state != StepState.CONFIRMED:
            row.time_state = StepState.SKIPPED
        if todo and commit_in_flight:
            # Recovery point: a crash from here on leaves the steps "sent", so the next
            # attempt looks for them on the ticket before posting again.
            for name in todo:
                Step(name).set_state(row, StepState.SENT)
            self._session.commit()
        if todo:
            # Worker threads must not touch the ORM row (its session is not theirs).
            job = _Job(row.reference, row.ticket_id, row.note_text, bool(row.internal), row.hours)
            steps: dict[str, Callable[[], StepUpdate]] = {
                "note": lambda: self._note(job, client, lookup=note_in_doubt),
                "time": lambda: self._time(job, client, lookup=time_in_doubt),
            }
            status_pending = bool(row.status_id) and row.status_state not in StepState.FINISHED
            known_board = board_id or client.known_board(job.ticket_id)
            together = status_pending and self._status_allows_time(
                client, known_board, row.status_id
            )
            with ThreadPoolExecutor(max_workers=len(todo) + 1) as pool:
                futures = {name: pool.submit(steps[name]) for name in todo}
                status_future = board = None
                if together:
                    # The new status accepts time entries: all three go out at once.
                    status_future = pool.submit(
                        self._status, client, job.ticket_id, row.status_id, known_board
                    )
                elif status_pending and known_board is None:
                    # The status needs the ticket's board: look it up alongside the others.
                    board = pool.submit(self._board_of, client, job.ticket_id)
                results = {name: future.result() for name, future in futures.items()}
                if board is not None:
                    board_id = board.result()
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
        if row.status_id and row.status_state not in StepState.FINISHED and not status_tried:
            row.status_attempts += 1
            row.status_state, row.status_error = self._status(
                client, row.ticket_id, row.status_id, board_id
            )
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

    @staticmethod
    def _status_allows_time(
        client: ConnectWiseClient, board_id: int | None, status_id: int | None
    ) -> bool:
        """True when the status is known (cached) to be active and to accept time entries."""
        if not board_id or not status_id:
            return False
        statuses = client.cached_statuses(board_id) or []
        status = next((s for s in statuses if s.id == status_id), None)
        return bool(status and not status.inactive and status.time_entry_allowed)

    @staticmethod
    def _board_of(client: ConnectWiseClient, ticket_id: int) -> int | None:
        """The ticket's board (with its statuses cached), or ``None`` if that failed."""
        try:
            board_id = client.get_ticket(ticket_id).board_id
            if board_id:
                client.board_statuses(board_id)
        except ConnectWiseError:
            return None
        return board_id

    def _note(self, row: _Job, client: ConnectWiseClient, *, lookup: bool) -> StepUpdate:
        marker = reference_line(row.reference)
        try:
            if lookup:
                for note in client.notes(row.ticket_id, containing=row.reference):
                    if marker in note.text:
                        return StepState.CONFIRMED, note.id, None
            if self._member_failure is not None:
                return self._unsent(self._member_failure, step="note", in_doubt=lookup)
            note = client.add_note(
                row.ticket_id,
                f"{row.note_text}\n\n{marker}",
                member=self._member,
                internal=bool(row.internal),
            )
        except ConnectWiseError as exc:
            return self._failed(exc, step="note", in_doubt=lookup)
        return StepState.CONFIRMED, note.id, None

    def _time(self, row: _Job, client: ConnectWiseClient, *, lookup: bool) -> StepUpdate:
        marker = reference_line(row.reference)
        try:
            if lookup:
                for entry in client.time_entries(row.ticket_id, containing=row.reference):
                    if entry.notes and marker in entry.notes:
                        return StepState.CONFIRMED, entry.id, None
            if self._member_failure is not None:
                return self._unsent(self._member_failure, step="time", in_doubt=lookup)
            entry = client.add_time_entry(
                row.ticket_id,
                hours=float(row.hours or 0),
                member=self._member,
                notes=f"{row.note_text[:900]}\n\n{marker}",
            )
        except ConnectWiseError as exc:
            return self._failed(exc, step="time", in_doubt=lookup)
        return StepState.CONFIRMED, entry.id, None
