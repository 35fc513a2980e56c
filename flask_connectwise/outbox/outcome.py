"""The steps of a change and the outcome of delivering it, in the HTTP contract and in words."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from ..models import ChangeLogRow, ChangeState, StepState
from ..wording import aside


class Step(Enum):
    """One of a change's three deliveries to ConnectWise."""

    NOTE = "note"
    TIME = "time"
    STATUS = "status"

    @property
    def words(self) -> str:
        """How the operator reads the step: ``the time entry``."""
        return _WORDS[self]

    @property
    def label(self) -> str:
        """The step as a short label: ``time entry``."""
        return _LABELS[self]

    @property
    def json_key(self) -> str:
        """The step's key in the HTTP contract's outcome: ``timeEntry``."""
        return _JSON_KEYS[self]

    # Each step's columns on the change-log row are read and written through the row's typed
    # ``step()`` / ``set_step()``; these helpers change one column at a time.

    def state_of(self, row: ChangeLogRow) -> str:
        return row.step(self).state

    def set_state(self, row: ChangeLogRow, state: str) -> None:
        row.set_step(self, replace(row.step(self), state=state))

    def error_of(self, row: ChangeLogRow) -> str | None:
        return row.step(self).error

    def set_error(self, row: ChangeLogRow, error: str | None) -> None:
        row.set_step(self, replace(row.step(self), error=error))

    def count_attempt(self, row: ChangeLogRow) -> None:
        columns = row.step(self)
        row.set_step(self, replace(columns, attempts=columns.attempts + 1))

    def attempts_of(self, row: ChangeLogRow) -> int:
        return row.step(self).attempts

    def remote_id_of(self, row: ChangeLogRow) -> int | None:
        """The created note's or time entry's id; the status set (once confirmed)."""
        if self is Step.STATUS:
            return row.status_id if row.status_state == StepState.CONFIRMED else None
        return row.step(self).remote_id

    def set_remote_id(self, row: ChangeLogRow, remote_id: int) -> None:
        row.set_step(self, replace(row.step(self), remote_id=remote_id))


_WORDS = {Step.NOTE: "the note", Step.TIME: "the time entry", Step.STATUS: "the status change"}
_LABELS = {Step.NOTE: "note", Step.TIME: "time entry", Step.STATUS: "status"}
_JSON_KEYS = {Step.NOTE: "note", Step.TIME: "timeEntry", Step.STATUS: "status"}

#: How a refusal an administrator must fix ends in the change log (admins see Retry there).
ADMIN_THEN_RETRY = " Sending it again will not help until that is done; then press Retry."
#: The same ending as the operator reads it: operators have no Retry button, and nothing
#: sends the change again by itself (an administrator does, with Retry in the change log).
OPERATOR_THEN_SENT = " An administrator can send it again from the change log once that is done."
#: Other refusals' admin endings (change log), and how an operator reads each instead.
ADMIN_ALLOWS_OVERLAP = (
    " or an administrator can allow overlapping time entries in ConnectWise and press Retry."
)
ADMIN_FIXES_CAUSE = " or fix the cause in ConnectWise and press Retry."
_OPERATOR_ENDINGS = {
    ADMIN_THEN_RETRY: OPERATOR_THEN_SENT,
    ADMIN_ALLOWS_OVERLAP: " or ask an administrator to allow overlapping time entries in ConnectWise.",
    ADMIN_FIXES_CAUSE: " or ask an administrator to fix the cause in ConnectWise.",
}

#: Our own check refused the ticket: it belongs to a company the tenant does not serve.
_OTHER_COMPANY = re.compile(r"^Ticket #\d+ belongs to .+, not .+$")


def refused_as_other_company(row: ChangeLogRow) -> bool:
    """Whether the change was refused for good by our company check: every step not done
    failed because its ticket belongs to another company (sending it again cannot help)."""
    return Outcome.of(row).other_company_refusal() is not None


#: What an operator can do about a skipped step, said after its reason (once, in the outcome).
_SKIP_ADVICE = {
    "no time entry: your user is not linked to a ConnectWise member": (
        "Ask an administrator to link one."
    ),
}


#: ConnectWise's own words before ours, when ours already say what is wrong (a time entry
#: refused for lack of a work type, for overlapping, for an API member): ``ConnectWise
#: refused the time entry (The workType field is required): this tenant's …``.
_RAW_BEFORE_OURS = re.compile(r"^ConnectWise refused the time entry \([^()]*\): (?=\S)")


def for_operator(error: str) -> str:
    """A step's error as an operator reads it: no Retry (only admins see it, in the change
    log; an administrator sends the change again there once the cause is fixed), and no
    ConnectWise field message where our own words follow and say what is wrong."""
    for admin, operator in _OPERATOR_ENDINGS.items():
        error = error.replace(admin, operator)
    return _RAW_BEFORE_OURS.sub("", error)


@dataclass(frozen=True)
class StepResult:
    """Where one step stands: its state, the remote id once done, the error in plain words."""

    state: str
    id: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.state in StepState.FINISHED

    @property
    def skipped(self) -> bool:
        return self.state == StepState.SKIPPED

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any]
        if self.skipped:
            data = {"ok": True, "state": StepState.SKIPPED, "skipped": True}
            if self.error:
                # Why the step was left out (e.g. "no time entry: ticket #12348 is closed").
                data["reason"] = self.error
            return data
        data = {"ok": self.ok, "state": self.state}
        if self.id is not None:
            data["id"] = self.id
        if self.error:
            # A done step's words are no error (e.g. where an overlapping entry was placed).
            data["detail" if self.ok else "error"] = self.error
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepResult:
        if data.get("skipped"):
            reason = data.get("reason")
            return cls(StepState.SKIPPED, error=str(reason) if reason else None)
        state = data.get("state") or (StepState.CONFIRMED if data.get("ok") else StepState.FAILED)
        if data.get("ok") and state not in StepState.FINISHED:
            state = StepState.CONFIRMED
        return cls(str(state), data.get("id"), data.get("error") or data.get("detail"))


def _listed(words: list[str]) -> str:
    """``["a", "b", "c"]`` -> ``a, b and c``."""
    if len(words) < 2:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def _minutes_text(hours: float) -> str:
    minutes = round(hours * 60)
    if minutes < 60:
        return f"{minutes} min"
    whole, rest = divmod(minutes, 60)
    return f"{whole} h {rest} min" if rest else f"{whole} h"


@dataclass(frozen=True)
class Outcome:
    """The result of delivering a change (or of asking for it again)."""

    reference: str | None
    ticket_id: int | None
    state: str
    steps: Mapping[Step, StepResult]
    #: The time entry's hours (for the words; not part of the HTTP answer).
    hours: float | None = None
    #: Someone else was delivering it: nothing was sent this time.
    busy: bool = False
    #: The answer to a repeated idempotency key.
    replayed: bool = False

    @classmethod
    def of(cls, row: ChangeLogRow) -> Outcome:
        """Where the change ``row`` stands now."""
        steps = {
            step: StepResult(step.state_of(row), step.remote_id_of(row), step.error_of(row))
            for step in Step
        }
        return cls(row.reference, row.ticket_id, str(row.state), steps, hours=row.hours)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], hours: float | None = None) -> Outcome:
        """Read back :meth:`to_json` (a missing step counts as done)."""
        steps = {step: StepResult.from_json(data.get(step.json_key) or {}) for step in Step}
        return cls(
            data.get("changeId"),
            data.get("ticketId"),
            str(data.get("state") or ""),
            steps,
            hours=hours,
            busy=bool(data.get("busy")),
            replayed=bool(data.get("replayed")),
        )

    @property
    def delivered(self) -> bool:
        return self.state == ChangeState.DELIVERED

    @property
    def needs_attention(self) -> bool:
        """Refused for good (or too old): nothing is retried until someone acts."""
        return self.state == ChangeState.FAILED

    def to_json(self) -> dict[str, Any]:
        """The HTTP contract's per-step result (also what the signals carry)."""
        data: dict[str, Any] = {"changeId": self.reference, "ticketId": self.ticket_id}
        data["state"] = self.state
        for step in Step:
            data[step.json_key] = self.steps[step].to_json()
        if self.busy:
            data["busy"] = True
        if self.replayed:
            data["replayed"] = True
        return data

    def done_words(self) -> list[str]:
        """What reached the ticket: ``["note added", "15 min logged"]``; a time entry moved
        clear of the member's other entries says where it went (``"15 min logged, placed
        05:32–05:47 UTC, where jdoe's time sheet was free"``)."""
        done = {
            Step.NOTE: "note added",
            Step.TIME: f"{_minutes_text(self.hours or 0)} logged",
            Step.STATUS: "status set",
        }
        return [
            f"{done[s]}, {r.error}" if s is Step.TIME and r.error else done[s]
            for s, r in self.steps.items()
            if r.ok and not r.skipped
        ]

    def skipped_words(self) -> list[str]:
        """Why steps were left out: ``["no time entry: ticket #12348 is closed"]``."""
        return [r.error for r in self.steps.values() if r.skipped and r.error]

    def failed_words(self) -> list[str]:
        """What did not, with the reason: ``["the time entry (ConnectWise is down)"]``.

        Steps that failed for the same reason (a refusal of the whole change: another
        company's ticket, an unusable member) share one entry, so the reason is said once:
        ``["the note, the time entry and the status change (Ticket #12460 belongs to …)"]``.
        """
        return [
            f"{_listed(words)} {aside(for_operator(error))}" if error else _listed(words)
            for words, error in self._failed_groups()
        ]

    def _failed_groups(self) -> list[tuple[list[str], str | None]]:
        """The failed steps' words grouped by their reason, in step order."""
        groups: dict[str | None, list[str]] = {}
        for step, result in self.steps.items():
            if not result.ok:
                groups.setdefault(result.error or None, []).append(step.words)
        return [(words, error) for error, words in groups.items()]

    def other_company_refusal(self) -> str | None:
        """Our company check's words when it refused the change for good (the ticket belongs
        to a company the tenant does not serve), else ``None``."""
        if not self.needs_attention:
            return None
        errors = {r.error or "" for r in self.steps.values() if not r.ok}
        if len(errors) == 1 and _OTHER_COMPANY.match(next(iter(errors))):
            return next(iter(errors))
        return None

    @property
    def severity(self) -> str:
        """``success``, ``warning`` (will be retried) or ``error`` (needs attention)."""
        if not self.failed_words():
            return "success"
        # A partial success (the note is on the ticket, the time entry was refused) is no
        # full failure: it is styled as a warning even when the rest needs an administrator.
        return "error" if self.needs_attention and not self.done_words() else "warning"

    def summary(self) -> str:
        """The outcome in plain words, for the operator, the admin and the CLI."""
        ticket = self.ticket_id
        done, failed = self.done_words(), self.failed_words()
        skipped = "".join(
            f" {reason[:1].upper()}{reason[1:]}."
            + (f" {_SKIP_ADVICE[reason]}" if reason in _SKIP_ADVICE else "")
            for reason in self.skipped_words()
        )
        return self._summary(ticket, done, failed) + skipped

    def _summary(self, ticket: int | None, done: list[str], failed: list[str]) -> str:
        if not failed:
            if not done:
                return f"Nothing was logged to ticket #{ticket}."
            return f"Logged to ticket #{ticket}: {', '.join(done)}."
        if self.needs_attention:
            # Refused for good: what reached the ticket, then each refused step in sentences
            # of its own with why and what to do (no reason nested in brackets).
            head = (
                f"Logged to ticket #{ticket}: {', '.join(done)}."
                if done
                else f"Could not log to ticket #{ticket}."
            )
            return " ".join([head, *self._refused_sentences()])
        head = f"Logged to ticket #{ticket}: {', '.join(done)}; " if done else ""
        # One entry may name several steps ("the note and the time entry (…)"): then the
        # entries are set apart with ";" so no reason seems to belong to the wrong step.
        several = len(failed) > 1 and any(len(w) > 1 for w, _ in self._failed_groups())
        what = ("; " if several else " and ").join(failed)
        if not head:
            return f"Could not log to ticket #{ticket} yet: {what} failed. It will be retried."
        return f"{head}{what} failed and will be retried."

    def _refused_sentences(self) -> list[str]:
        """Each group of refused steps in its own sentence(s): ``The time entry was not
        logged: this tenant's ConnectWise requires a work type and a work role. …``."""
        sentences = []
        for words, error in self._failed_groups():
            what = _listed(words)
            what = f"{what[:1].upper()}{what[1:]} {'were' if len(words) > 1 else 'was'} not logged"
            if not error:
                sentences.append(f"{what}.")
                continue
            reason = for_operator(error).strip()
            end = "" if reason.endswith((".", "!", "?")) else "."
            sentences.append(f"{what}: {reason}{end}")
        return sentences

    def retry_summary(self, label: str) -> str:
        """The outcome of asking for ``label`` (e.g. ``Change cwlog-… (ticket 42)``) again,
        step by step: what is done and what still fails, with the reason."""
        if self.delivered:
            return f"{label}: delivered; every step is done now."
        done: list[str] = []
        failing: dict[str, list[str]] = {}  # reason -> the steps failing for it (said once)
        for step, result in self.steps.items():
            if result.skipped:
                continue
            if result.ok:
                done.append(f"the {step.label}")
            else:
                reason = result.error or result.state or "not done"
                failing.setdefault(reason, []).append(f"the {step.label}")
        message = f"{label} is still not complete."
        if self.other_company_refusal() is not None:
            message = (
                f"{label} was refused by this app's own check, not by ConnectWise: its ticket "
                "belongs to a company this tenant does not serve. Sending it again will not "
                "help: log the change again on the right ticket."
            )
        elif self.needs_attention:
            message = (
                f"{label} needs attention: ConnectWise refused it, and sending it again will "
                "not help until the cause is fixed."
            )
        if done:
            message += " Done: " + ", ".join(done) + "."
        if failing:
            message += (
                " Still failing: "
                + "; ".join(
                    f"{_listed(steps)} {aside(reason)}" for reason, steps in failing.items()
                )
                + "."
            )
        return message


def outcome_of(row: ChangeLogRow) -> dict[str, Any]:
    """The per-step result of a change, as the HTTP contract answers it."""
    return Outcome.of(row).to_json()
