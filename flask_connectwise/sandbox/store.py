"""The sandbox's state and ConnectWise's write rules (notes, time entries, ticket PATCH).

Callers hold ``Store.lock`` around every read and write; records handed out by the listing
methods are the live objects (serialise them before releasing the lock).
"""

from __future__ import annotations

import copy
import dataclasses
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from . import data
from .data import company_ref, member_ref, now_iso
from .errors import CWError, bad_request, invalid, missing, not_found
from .rules import LENIENT, SandboxRules

BILLABLE_OPTIONS = ("Billable", "DoNotBill", "NoCharge", "NoDefault")
CHARGE_TYPES = ("ServiceTicket", "ProjectTicket", "ChargeCode", "Activity")
NOTE_FLAGS = ("detailDescriptionFlag", "internalAnalysisFlag", "resolutionFlag")
SUMMARY_MAX = 100
#: Fields whose text ``Store.prefix_text`` changes (display text only, never identifiers).
DISPLAY_TEXT_KEYS = frozenset({"name", "summary", "text", "firstName", "lastName"})
SYSTEM_VERSION = "v2025.1.10431"
#: What an entry sent without workType / workRole records (the sandbox's long-standing default),
#: and the location of an entry not charged to a ticket (every seed board sits there).
DEFAULT_WORK_TYPE_ID, DEFAULT_WORK_ROLE_ID, DEFAULT_LOCATION_ID = 3, 11, 2
#: Seconds a member impersonation token lives unless ``Store.token_lifetime`` says otherwise.
DEFAULT_TOKEN_LIFETIME = 3600.0


@dataclass(frozen=True)
class MemberToken:
    """Impersonation keys issued to one member, until ``expires`` (UTC)."""

    public_key: str
    private_key: str = dataclasses.field(repr=False)
    member_id: int = 0
    expires: datetime = dataclasses.field(default_factory=lambda: datetime.now(UTC))


def _prefix_display_text(value: Any, prefix: str, old: str = "") -> None:
    """Put ``prefix`` before each display text, in place of ``old`` where a text starts with it."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in DISPLAY_TEXT_KEYS and isinstance(item, str):
                value[key] = prefix + (item[len(old) :] if old and item.startswith(old) else item)
            else:
                _prefix_display_text(item, prefix, old)
    elif isinstance(value, list):
        for item in value:
            _prefix_display_text(item, prefix, old)


def parse_cw_time(value: Any, resource: str, field: str) -> datetime:
    """Parse ``YYYY-MM-DDTHH:MM:SS[.fff]Z``; anything else (naive, offsets) is a 400 (guess)."""
    if not isinstance(value, str) or not value.endswith("Z"):
        raise invalid(
            resource,
            field,
            "InvalidField",
            f"{field} must be a UTC date time such as 2024-01-01T10:00:00Z.",
        )
    try:
        parsed = datetime.fromisoformat(value[:-1])
    except ValueError:
        raise invalid(
            resource,
            field,
            "InvalidField",
            f"{field} must be a UTC date time such as 2024-01-01T10:00:00Z.",
        ) from None
    if parsed.tzinfo is not None:
        raise invalid(resource, field, "InvalidField", f"{field} has two time zones.")
    return parsed.replace(tzinfo=UTC)


def build_time_entry(
    base: str,
    entry_id: int,
    ticket: dict[str, Any] | None,
    company: dict[str, Any],
    member: dict[str, Any],
    body: dict[str, Any],
    start: str,
    end: str,
    hours: float,
    now: str,
    *,
    work_type: dict[str, Any] | None = None,
    work_role: dict[str, Any] | None = None,
    location_id: int = DEFAULT_LOCATION_ID,
) -> dict[str, Any]:
    """A TimeEntry record as ConnectWise returns it: the work type and role sent (records of
    ``time/workTypes`` / ``time/workRoles``), else Regular / System Engineer; ``locationId``
    is the location of the ticket's board."""
    work_type = work_type or {"id": DEFAULT_WORK_TYPE_ID, "name": "Regular"}
    work_role = work_role or {"id": DEFAULT_WORK_ROLE_ID, "name": "System Engineer"}
    entry: dict[str, Any] = {
        "id": entry_id,
        "company": company_ref(base, company),
        "companyType": "Client",
        "chargeToId": ticket["id"] if ticket else body.get("chargeToId"),
        "chargeToType": body.get("chargeToType", "ServiceTicket" if ticket else None),
        "member": member_ref(base, member),
        "locationId": location_id,
        "businessUnitId": 10,
        "workType": {
            "id": work_type["id"],
            "name": work_type["name"],
            "_info": {"workType_href": data.href(base, f"time/workTypes/{work_type['id']}")},
        },
        "workRole": {
            "id": work_role["id"],
            "name": work_role["name"],
            "_info": {"workRole_href": data.href(base, f"time/workRoles/{work_role['id']}")},
        },
        "agreement": None,
        "timeStart": start,
        "timeEnd": end,
        "hoursDeduct": float(body.get("hoursDeduct") or 0.0),
        "actualHours": hours,
        "billableOption": body.get("billableOption", "Billable"),
        "notes": body.get("notes", ""),
        "internalNotes": body.get("internalNotes", ""),
        "addToDetailDescriptionFlag": bool(body.get("addToDetailDescriptionFlag")),
        "addToInternalAnalysisFlag": bool(body.get("addToInternalAnalysisFlag")),
        "addToResolutionFlag": bool(body.get("addToResolutionFlag")),
        "emailResourceFlag": bool(body.get("emailResourceFlag")),
        "emailContactFlag": bool(body.get("emailContactFlag")),
        "emailCcFlag": bool(body.get("emailCcFlag")),
        "hoursBilled": hours,
        "enteredBy": member["identifier"],
        "dateEntered": now,
        "mobileGuid": f"00000000-0000-4000-8000-{entry_id:012d}",
        "status": "Open",
        "_info": {"lastUpdated": now, "updatedBy": member["identifier"]},
    }
    if ticket is not None:
        entry["ticket"] = {
            "id": ticket["id"],
            "summary": ticket["summary"],
            "_info": {"ticket_href": data.href(base, f"service/tickets/{ticket['id']}")},
        }
    return entry


class Store:
    """All sandbox records plus one lock; ``reset()`` restores the seed."""

    def __init__(self, seed: int, base: str, rules: SandboxRules = LENIENT) -> None:
        self.lock = threading.RLock()
        #: Tenant rule switches for time entries (``rules.py``); the app's ``reset()`` restores them.
        self.rules = rules
        self.seed = seed
        self.base = base
        self.data = data.build(seed, base)
        self._pristine = data.dump(self.data)
        self.text_prefix = ""
        #: Member impersonation tokens by public key (``POST system/members/{id}/tokens``).
        self.tokens: dict[str, MemberToken] = {}
        #: Seconds an impersonation token lives (a guess: real ConnectWise does not document it).
        self.token_lifetime = DEFAULT_TOKEN_LIFETIME
        #: The member a token authenticated the current request as (``None``: the API keys);
        #: set by the app around each handler, under ``lock``.
        self.actor: dict[str, Any] | None = None

    def reset(self) -> None:
        """Restore the seed data (and drop any text prefix)."""
        with self.lock:
            self.data = data.load(self._pristine)
            self.text_prefix = ""

    def prefix_text(self, prefix: str | None) -> None:
        """Put ``prefix`` in front of every display text: board, status, company and member
        names, ticket summaries, note texts and the ``system/info`` version (hostile-input
        tests pass HTML). Ids and identifiers are kept, so everything still resolves.

        A new prefix replaces the one in force (prefixes do not stack); ``None`` or ``""``
        removes it."""
        prefix = prefix or ""
        with self.lock:
            old, self.text_prefix = self.text_prefix, prefix
            if old == prefix:
                return
            for name in data.COLLECTIONS:
                for record in getattr(self.data, name).values():
                    _prefix_display_text(record, prefix, old)

    # ---- reads -------------------------------------------------------------------------
    def ticket(self, ticket_id: int) -> dict[str, Any]:
        """The live ticket, or 404 ``Ticket N not found``."""
        ticket = self.data.tickets.get(ticket_id)
        if ticket is None:
            raise not_found(f"Ticket {ticket_id} not found")
        return ticket

    def board(self, board_id: int) -> dict[str, Any]:
        """The live board, or 404 (message is a guess)."""
        board = self.data.boards.get(board_id)
        if board is None:
            raise not_found(f"Service Board {board_id} not found")
        return board

    def board_statuses(self, board_id: int) -> list[dict[str, Any]]:
        """Statuses of one board (404 for an unknown board)."""
        self.board(board_id)
        return [s for s in self.data.statuses.values() if s["board"]["id"] == board_id]

    def notes(self, ticket_id: int) -> list[dict[str, Any]]:
        """Ticket notes (404 for an unknown ticket)."""
        self.ticket(ticket_id)
        return [n for n in self.data.notes.values() if n["ticketId"] == ticket_id]

    def time_entries(self, ticket_id: int | None = None) -> list[dict[str, Any]]:
        """All time entries, or those charged to one service ticket."""
        entries = list(self.data.time_entries.values())
        if ticket_id is None:
            return entries
        return [
            e
            for e in entries
            if e["chargeToId"] == ticket_id and e["chargeToType"] == "ServiceTicket"
        ]

    def all_notes(self, ticket_id: int) -> list[dict[str, Any]]:
        """Ticket notes and time-entry notes merged, with ``noteType``."""
        self.ticket(ticket_id)
        return self._all_notes(ticket_id)

    def _all_notes(self, ticket_id: int) -> list[dict[str, Any]]:
        # Items carry ServiceTicketNote's fields (ticket, originalAuthor, isMarkdownFlag,
        # bundledFlag, mergedFlag, timeStart/timeEnd); the ServiceNote-only ones kept here
        # (dateCreated, createdBy...) order the list and are dropped from the answer (schema.py).
        ticket = self.data.tickets[ticket_id]
        about = {
            "ticket": {"id": ticket_id, "summary": ticket["summary"]},
            "isMarkdownFlag": False,
            "bundledFlag": False,
            "mergedFlag": False,
        }
        out = [
            {
                **n,
                **about,
                "noteType": "TicketNote",
                "originalAuthor": n["member"]["name"],
                "timeStart": None,
                "timeEnd": None,
            }
            for n in self.data.notes.values()
            if n["ticketId"] == ticket_id
        ]
        for e in self.time_entries(ticket_id):
            if not e.get("notes"):
                continue
            detail, res = e["addToDetailDescriptionFlag"], e["addToResolutionFlag"]
            out.append(
                {
                    "id": e["id"],
                    "ticketId": ticket_id,
                    "text": e["notes"],
                    "detailDescriptionFlag": detail,
                    "internalAnalysisFlag": e["addToInternalAnalysisFlag"],
                    "resolutionFlag": res,
                    "member": e["member"],
                    "dateCreated": e["dateEntered"],
                    "createdBy": e["enteredBy"],
                    "internalFlag": e["addToInternalAnalysisFlag"],
                    "externalFlag": detail or res,
                    "noteType": "TimeEntryNote",
                    **about,
                    "originalAuthor": e["member"]["name"],
                    "timeStart": e["timeStart"],
                    "timeEnd": e["timeEnd"],
                    "_info": e["_info"],
                }
            )
        out.sort(key=lambda n: (n["dateCreated"], n["id"]))
        return out

    def snapshot(self, value: Any) -> Any:
        """A deep copy taken under the lock (for Python-side assertions)."""
        with self.lock:
            return copy.deepcopy(value)

    # ---- members -----------------------------------------------------------------------
    def find_member(self, ref: Any, resource: str, field: str = "member") -> dict[str, Any]:
        """Resolve ``{id}`` or ``{identifier}`` (case-insensitive); 400 naming ``field``."""
        if not isinstance(ref, dict) or ("id" not in ref and "identifier" not in ref):
            raise invalid(
                resource,
                field,
                "InvalidObject",
                "member must be an object with an id or identifier.",
            )
        for member in self.data.members.values():
            if "id" in ref and member["id"] == ref["id"]:
                return member
            ident = ref.get("identifier")
            if (
                "id" not in ref
                and isinstance(ident, str)
                and member["identifier"].lower() == ident.lower()
            ):
                return member
        label = ref.get("id", ref.get("identifier"))
        raise invalid(resource, field, "NotFound", f"Member {label} not found")

    def api_member(self) -> dict[str, Any]:
        """The member the API keys belong to (author of notes sent without ``member``)."""
        return self.data.members[data.API_MEMBER_ID]

    def writer(self) -> dict[str, Any]:
        """Who ConnectWise's audit trail (``_info.updatedBy``) names for the current request:
        the member an impersonation token acts as, else the API member."""
        return self.actor or self.api_member()

    def issue_token(self, member: dict[str, Any]) -> MemberToken:
        """New impersonation keys for ``member``, valid for ``token_lifetime`` seconds."""
        token = MemberToken(
            public_key=secrets.token_hex(8),
            private_key=secrets.token_hex(16),
            member_id=int(member["id"]),
            expires=datetime.now(UTC) + timedelta(seconds=self.token_lifetime),
        )
        self.tokens[token.public_key] = token
        return token

    # ---- writes ------------------------------------------------------------------------
    def add_note(self, ticket_id: int, body: Any) -> dict[str, Any]:
        """``POST service/tickets/{id}/notes`` rules; returns the stored note."""
        self.ticket(ticket_id)
        if not isinstance(body, dict):
            raise bad_request("The request body must be a serviceNote object.")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise missing("serviceNote", "text")
        if not any(body.get(flag) is True for flag in NOTE_FLAGS):
            raise invalid(
                "serviceNote",
                "detailDescriptionFlag",
                "InvalidObject",
                "Please choose where to display the notes in order to save this record.",
            )
        member = (
            self.find_member(body["member"], "serviceNote")
            if body.get("member") is not None
            else self.writer()
        )
        d = self.data
        note = data.make_note(self.base, d.next_note_id, ticket_id, member, body, now_iso())
        note["_info"]["updatedBy"] = self.writer()["identifier"]
        d.notes[d.next_note_id] = note
        d.next_note_id += 1
        self._touch(ticket_id, member)
        return note

    def add_time_entry(self, body: Any) -> dict[str, Any]:
        """``POST time/entries`` rules; returns the stored entry."""
        r = "timeEntry"
        if not isinstance(body, dict):
            raise bad_request("The request body must be a timeEntry object.")
        if body.get("timeStart") in (None, ""):
            raise missing(r, "timeStart")
        start = parse_cw_time(body["timeStart"], r, "timeStart")
        ticket, company = self._charge_target(body)
        member = (
            self.find_member(body["member"], r) if body.get("member") is not None else self.writer()
        )
        if member["inactiveFlag"]:
            raise invalid(
                r, "member", "InvalidObject", f"Member {member['identifier']} is inactive."
            )
        rules = self.rules
        option = body.get("billableOption", rules.billable_default)
        if option not in BILLABLE_OPTIONS:
            raise invalid(
                r,
                "billableOption",
                "InvalidField",
                f"billableOption must be one of {', '.join(BILLABLE_OPTIONS)}.",
            )
        deduct = body.get("hoursDeduct") or 0.0
        if not isinstance(deduct, int | float) or deduct < 0:
            raise invalid(r, "hoursDeduct", "InvalidField", "hoursDeduct must be >= 0.")
        end, hours = self._time_span(body, start, float(deduct))
        location_id = (
            self.board(ticket["board"]["id"])["location"]["id"]
            if ticket is not None
            else DEFAULT_LOCATION_ID
        )
        work_type = self._work_ref(body, "workType", self.data.work_types, "Work Type")
        work_role = self._work_ref(body, "workRole", self.data.work_roles, "Work Role")
        if work_role is not None and location_id not in work_role["locationIds"]:
            raise invalid(
                r,
                "workRole",
                "InvalidObject",
                "The Work Role is not valid for the selected location.",
            )
        self._tenant_rules(body, ticket, member, start, end)
        if ticket is not None and rules.time_entry_not_allowed:
            status = self.data.statuses[ticket["status"]["id"]]
            if status["timeEntryNotAllowed"]:
                raise invalid(
                    r,
                    "chargeToId",
                    "InvalidObject",
                    f"Time entries are not allowed on tickets with status '{status['name']}'.",
                )
        d = self.data
        entry = build_time_entry(
            self.base,
            d.next_time_id,
            ticket,
            company,
            member,
            {**body, "billableOption": option},
            data.iso(start),
            data.iso(end),
            hours,
            now_iso(),
            work_type=work_type,
            work_role=work_role,
            location_id=location_id,
        )
        entry["_info"]["updatedBy"] = self.writer()["identifier"]
        d.time_entries[d.next_time_id] = entry
        d.next_time_id += 1
        if ticket is not None:
            ticket["actualHours"] = round((ticket["actualHours"] or 0) + hours, 2)
            self._touch(ticket["id"], member)
        return entry

    @staticmethod
    def _work_ref(
        body: dict[str, Any], field: str, records: dict[int, dict[str, Any]], label: str
    ) -> dict[str, Any] | None:
        """The record ``body[field]`` (``{"id"}`` or ``{"name"}``, name case-insensitive) names,
        checked always (not only under the strict rules): unknown or inactive is a 400 on
        ``field`` (texts follow the sandbox's other NotFound / inactive messages; guesses).
        ``None`` when the body has no reference."""
        r = "timeEntry"
        ref = body.get(field)
        if ref is None:
            return None
        if not isinstance(ref, dict) or ("id" not in ref and "name" not in ref):
            raise invalid(
                r, field, "InvalidObject", f"{field} must be an object with an id or name."
            )
        if "id" in ref:
            key = ref["id"]
            found = next(
                (w for w in records.values() if not isinstance(key, bool) and w["id"] == key),
                None,
            )
        else:
            key = ref["name"]
            name = str(key).lower()
            found = next((w for w in records.values() if w["name"].lower() == name), None)
        if found is None:
            raise invalid(r, field, "NotFound", f"{label} {key} not found")
        if found["inactiveFlag"]:
            raise invalid(r, field, "InvalidObject", f"{label} {found['id']} is inactive")
        return found

    def _tenant_rules(
        self,
        body: dict[str, Any],
        ticket: dict[str, Any] | None,
        member: dict[str, Any],
        start: datetime,
        end: datetime,
    ) -> None:
        """The switchable rules of ``rules.py`` (error texts are guesses unless §10 quotes them)."""
        r, rules = "timeEntry", self.rules
        if rules.work_type_required and not body.get("workType"):
            raise missing(r, "workType")
        if rules.work_role_required and not body.get("workRole"):
            raise invalid(
                r,
                "workRole",
                "InvalidObject",
                "The default Work Role is not valid for the selected location.",
            )
        if rules.api_member_time and member.get("licenseClass") == "A":
            raise invalid(
                r,
                "member",
                "InvalidObject",
                f"Time entries cannot be entered for API member {member['identifier']}.",
            )
        if rules.closed_ticket_time and ticket is not None and ticket.get("closedFlag"):
            raise invalid(
                r,
                "chargeToId",
                "InvalidObject",
                f"Time entries cannot be added to closed ticket #{ticket['id']}.",
            )
        if rules.overlapping_time:
            for other in self.data.time_entries.values():
                if other["member"]["id"] != member["id"]:
                    continue
                o_start = parse_cw_time(other["timeStart"], r, "timeStart")
                o_end = parse_cw_time(other["timeEnd"], r, "timeEnd")
                if start < o_end and o_start < end:
                    raise invalid(
                        r,
                        "timeStart",
                        "InvalidObject",
                        f"This time entry overlaps time entry {other['id']} of member "
                        f"{member['identifier']}.",
                    )

    def _charge_target(self, body: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        r = "timeEntry"
        charge_id, charge_type = body.get("chargeToId"), body.get("chargeToType")
        if charge_id is None:
            ref = body.get("company")
            if not isinstance(ref, dict):
                raise missing(r, "company")
            company = next(
                (
                    c
                    for c in self.data.companies.values()
                    if c["id"] == ref.get("id")
                    or c["identifier"].lower() == str(ref.get("identifier", "")).lower()
                ),
                None,
            )
            if company is None:
                raise invalid(r, "company", "NotFound", f"Company {ref} not found")
            return None, company
        if charge_type is None:
            raise missing(r, "chargeToType")
        if charge_type not in CHARGE_TYPES:
            raise invalid(
                r,
                "chargeToType",
                "InvalidField",
                f"chargeToType must be one of {', '.join(CHARGE_TYPES)}.",
            )
        if not isinstance(charge_id, int) or isinstance(charge_id, bool):
            raise invalid(r, "chargeToId", "InvalidField", "chargeToId must be an integer.")
        if charge_type in ("ServiceTicket", "ProjectTicket"):
            ticket = self.data.tickets.get(charge_id)
            kind = "Ticket" if charge_type == "ServiceTicket" else "Project Ticket"
            if ticket is None or charge_type == "ProjectTicket":
                raise invalid(r, "chargeToId", "NotFound", f"{kind} {charge_id} not found")
            return ticket, self.data.companies[ticket["company"]["id"]]
        return None, self.data.companies[2]

    @staticmethod
    def _time_span(body: dict[str, Any], start: datetime, deduct: float) -> tuple[datetime, float]:
        r = "timeEntry"
        hours = body.get("actualHours")
        if hours is not None and (
            not isinstance(hours, int | float) or isinstance(hours, bool) or hours <= 0
        ):
            raise invalid(r, "actualHours", "InvalidField", "actualHours must be greater than 0.")
        if body.get("timeEnd") not in (None, ""):
            end = parse_cw_time(body["timeEnd"], r, "timeEnd")
            if end <= start:
                raise invalid(r, "timeEnd", "InvalidField", "timeEnd must be after timeStart.")
            if hours is None:
                hours = round((end - start).total_seconds() / 3600 - deduct, 2)
                if hours <= 0:
                    raise invalid(
                        r,
                        "hoursDeduct",
                        "InvalidField",
                        "hoursDeduct must be less than the time worked.",
                    )
            return end, float(hours)
        if hours is None:
            raise missing(r, "timeEnd")
        return start + timedelta(hours=float(hours) + deduct), float(hours)

    def patch_ticket(self, ticket_id: int, ops: Any) -> dict[str, Any]:
        """``PATCH service/tickets/{id}``: all ops are validated, then applied together."""
        ticket = self.ticket(ticket_id)
        if not isinstance(ops, list) or not ops:
            raise bad_request(
                "The request body must be a non-empty JSON array of patch operations."
            )
        changes: dict[str, Any] = {}
        for op in ops:
            changes.update(self._patch_op(ticket, op))
        if "status" in changes:
            status = self.data.statuses[changes["status"]["id"]]
            if status["closedStatus"] and not ticket["closedFlag"]:
                changes.update(
                    closedFlag=True, closedDate=now_iso(), closedBy=self.api_member()["identifier"]
                )
            elif not status["closedStatus"]:
                changes.update(closedFlag=False, closedDate=None, closedBy=None)
        ticket.update(changes)
        self._touch(ticket_id, self.api_member())
        return ticket

    def _patch_op(self, ticket: dict[str, Any], op: Any) -> dict[str, Any]:
        r = "ticket"
        if not isinstance(op, dict) or not isinstance(op.get("path"), str):
            raise bad_request("Each patch operation must be an object with op, path and value.")
        kind = str(op.get("op", "")).lower()
        if kind not in ("add", "replace", "remove"):
            raise invalid(r, op["path"], "InvalidField", f"op '{op.get('op')}' is not valid.")
        path = op["path"].strip("/").lower()
        value = op.get("value")
        if path in ("status", "status/id", "status/name"):
            if kind == "remove":
                raise missing(r, "status")
            if path == "status/id":
                value = {"id": value}
            elif path == "status/name":
                value = {"name": value}
            return {"status": data.status_ref(self.base, self._resolve_status(ticket, value))}
        if path == "summary":
            if kind == "remove" or not isinstance(value, str) or not value.strip():
                raise missing(r, "summary")
            if len(value) > SUMMARY_MAX:
                raise invalid(
                    r,
                    "summary",
                    "MaxLengthField",
                    f"summary exceeds the max length ({SUMMARY_MAX})",
                )
            return {"summary": value}
        if path == "customerupdatedflag":
            if not isinstance(value, bool):
                raise invalid(
                    r,
                    "customerUpdatedFlag",
                    "InvalidField",
                    "customerUpdatedFlag must be a boolean.",
                )
            return {"customerUpdatedFlag": value}
        if path in ("owner", "owner/id", "owner/identifier"):
            if kind == "remove":
                return {"owner": None}
            if path != "owner":
                value = {path.split("/")[1]: value}
            return {"owner": member_ref(self.base, self.find_member(value, r, "owner"))}
        raise invalid(
            r,
            op["path"],
            "InvalidField",
            f"Cannot patch path '{op['path']}': the field does not exist or is read-only.",
        )

    def _resolve_status(self, ticket: dict[str, Any], value: Any) -> dict[str, Any]:
        board_id = ticket["board"]["id"]
        if not isinstance(value, dict) or ("id" not in value and "name" not in value):
            raise invalid(
                "ticket",
                "status",
                "InvalidField",
                'status must be an object with an id or name, e.g. {"id": 123}.',
            )
        statuses = self.board_statuses(board_id)
        if "id" in value:
            found = next((s for s in statuses if s["id"] == value["id"]), None)
            label = value["id"]
        else:
            name = str(value["name"]).lower()
            found = next(
                (s for s in statuses if s["name"].lower() == name and not s["inactive"]), None
            )
            label = value["name"]
        if found is None:
            raise CWError(
                400,
                "InvalidObject",
                "ticket object is invalid",
                [
                    {
                        "code": "NotFound",
                        "message": f"Service Status {label} not found for Service Board {board_id}",
                        "resource": "ticket",
                        "field": "status/id",
                    }
                ],
            )
        if found["inactive"]:
            raise invalid(
                "ticket", "status/id", "InvalidObject", f"Service Status {found['id']} is inactive"
            )
        return found

    def _touch(self, ticket_id: int, member: dict[str, Any]) -> None:
        info = self.data.tickets[ticket_id]["_info"]
        info["lastUpdated"] = now_iso()
        info["updatedBy"] = (self.actor or member)["identifier"]
