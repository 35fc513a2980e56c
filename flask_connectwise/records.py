"""Typed results of ConnectWise calls.

Each record is built from ConnectWise's JSON with ``from_api`` (tolerant of missing and extra
fields, since real answers vary by version) and turned into this project's camelCase HTTP
contract with ``to_json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

JSON = dict[str, Any]


def _ref(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _member_identifier(data: Mapping[str, Any]) -> str | None:
    member = _ref(data, "member")
    return _str(member.get("identifier")) or _str(member.get("name"))


def parse_datetime(value: Any) -> datetime | None:
    """Parse ConnectWise's ``2024-01-01T10:00:00Z`` timestamps (``None`` when absent or odd)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


@dataclass(frozen=True)
class Ticket:
    """A service ticket, reduced to what an operator needs to recognise it."""

    id: int
    summary: str
    status: str | None = None
    status_id: int | None = None
    board: str | None = None
    board_id: int | None = None
    company: str | None = None
    company_id: int | None = None
    closed: bool = False

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Ticket:
        status, board, company = _ref(data, "status"), _ref(data, "board"), _ref(data, "company")
        return cls(
            id=int(data["id"]),
            summary=_str(data.get("summary")) or "",
            status=_str(status.get("name")),
            status_id=_int(status.get("id")),
            board=_str(board.get("name")),
            board_id=_int(board.get("id")),
            company=_str(company.get("name")),
            company_id=_int(company.get("id")),
            closed=bool(data.get("closedFlag", False)),
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Ticket:
        """The inverse of :meth:`to_json`."""
        return cls(
            id=int(data["id"]),
            summary=data.get("summary") or "",
            status=data.get("status"),
            status_id=data.get("statusId"),
            board=data.get("board"),
            board_id=data.get("boardId"),
            company=data.get("company"),
            company_id=data.get("companyId"),
            closed=bool(data.get("closed", False)),
        )

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "summary": self.summary,
            "status": self.status,
            "statusId": self.status_id,
            "company": self.company,
            "companyId": self.company_id,
            "board": self.board,
            "boardId": self.board_id,
            "closed": self.closed,
        }


@dataclass(frozen=True)
class Note:
    """A note on a service ticket."""

    id: int
    ticket_id: int
    text: str
    internal: bool = False
    member: str | None = None
    created: datetime | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Note:
        return cls(
            id=int(data["id"]),
            ticket_id=_int(data.get("ticketId")) or 0,
            text=_str(data.get("text")) or "",
            internal=bool(data.get("internalAnalysisFlag", False)),
            member=_member_identifier(data),
            created=parse_datetime(data.get("dateCreated")),
        )

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "ticketId": self.ticket_id,
            "text": self.text,
            "internal": self.internal,
            "member": self.member,
            "dateCreated": _iso(self.created),
        }


@dataclass(frozen=True)
class TimeEntry:
    """A time entry charged to a service ticket."""

    id: int
    ticket_id: int | None
    hours: float | None
    start: datetime | None = None
    end: datetime | None = None
    member: str | None = None
    notes: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> TimeEntry:
        return cls(
            id=int(data["id"]),
            ticket_id=_int(data.get("chargeToId")),
            hours=_float(data.get("actualHours")),
            start=parse_datetime(data.get("timeStart")),
            end=parse_datetime(data.get("timeEnd")),
            member=_member_identifier(data),
            notes=_str(data.get("notes")),
        )

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "ticketId": self.ticket_id,
            "hours": self.hours,
            "timeStart": _iso(self.start),
            "timeEnd": _iso(self.end),
            "member": self.member,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class Board:
    """A service board."""

    id: int
    name: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Board:
        return cls(id=int(data["id"]), name=_str(data.get("name")) or "")

    def to_json(self) -> JSON:
        return {"id": self.id, "name": self.name}


@dataclass(frozen=True)
class BoardStatus:
    """One status of a service board."""

    id: int
    name: str
    board_id: int | None = None
    closed: bool = False
    inactive: bool = False
    time_entry_allowed: bool = True
    default: bool = False
    sort_order: int | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> BoardStatus:
        return cls(
            id=int(data["id"]),
            name=_str(data.get("name")) or "",
            board_id=_int(_ref(data, "board").get("id")),
            closed=bool(data.get("closedStatus", False)),
            inactive=bool(data.get("inactive", False)),
            time_entry_allowed=not data.get("timeEntryNotAllowed", False),
            default=bool(data.get("defaultFlag", False)),
            sort_order=_int(data.get("sortOrder")),
        )

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "name": self.name,
            "boardId": self.board_id,
            "closed": self.closed,
            "inactive": self.inactive,
            "timeEntryAllowed": self.time_entry_allowed,
            "default": self.default,
        }


@dataclass(frozen=True)
class Member:
    """A ConnectWise member (a technician or an API member)."""

    id: int
    identifier: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    inactive: bool = False
    #: ConnectWise's ``licenseClass``: ``"F"`` a full member, ``"A"`` an API member (no person);
    #: ``None`` when the answer did not say.
    license_class: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Member:
        return cls(
            id=int(data["id"]),
            identifier=_str(data.get("identifier")) or "",
            first_name=_str(data.get("firstName")),
            last_name=_str(data.get("lastName")),
            email=_str(data.get("primaryEmail")) or _str(data.get("officeEmail")),
            inactive=bool(data.get("inactiveFlag", False)),
            license_class=_str(data.get("licenseClass")),
        )

    @property
    def is_api_member(self) -> bool:
        """True for an API member (``licenseClass`` ``"A"``): not a person to attribute work to."""
        return self.license_class == "A"

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or self.identifier

    def to_json(self) -> JSON:
        return {
            "id": self.id,
            "identifier": self.identifier,
            "name": self.name,
            "email": self.email,
            "inactive": self.inactive,
            "licenseClass": self.license_class,
        }


@dataclass(frozen=True)
class Company:
    """A ConnectWise company (a customer of the MSP, or the MSP itself)."""

    id: int
    identifier: str
    name: str

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Company:
        return cls(
            id=int(data["id"]),
            identifier=_str(data.get("identifier")) or "",
            name=_str(data.get("name")) or "",
        )

    def to_json(self) -> JSON:
        return {"id": self.id, "identifier": self.identifier, "name": self.name}


@dataclass(frozen=True)
class WorkType:
    """A time entry work type; ``billable_option`` is its ``billTime`` (``Billable`` ...)."""

    id: int
    name: str
    billable_option: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> WorkType:
        return cls(
            id=int(data["id"]),
            name=_str(data.get("name")) or "",
            billable_option=_str(data.get("billTime")),
        )

    def to_json(self) -> JSON:
        return {"id": self.id, "name": self.name, "billableOption": self.billable_option}


@dataclass(frozen=True)
class WorkRole:
    """A time entry work role; ``location_ids`` are the locations it is valid at."""

    id: int
    name: str
    location_ids: tuple[int, ...] = ()

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> WorkRole:
        raw = data.get("locationIds")
        ids = (
            tuple(i for i in (_int(v) for v in raw) if i is not None)
            if isinstance(raw, list)
            else ()
        )
        return cls(id=int(data["id"]), name=_str(data.get("name")) or "", location_ids=ids)

    def to_json(self) -> JSON:
        return {"id": self.id, "name": self.name, "locationIds": list(self.location_ids)}


@dataclass(frozen=True)
class SystemInfo:
    """What ``system/info`` reports; used to test a connection."""

    version: str
    is_cloud: bool | None = None
    codebase: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any], *, codebase: str | None = None) -> SystemInfo:
        cloud = data.get("isCloud")
        return cls(
            version=_str(data.get("version")) or "unknown",
            is_cloud=cloud if isinstance(cloud, bool) else None,
            codebase=codebase,
        )

    def to_json(self) -> JSON:
        return {"version": self.version, "isCloud": self.is_cloud, "codebase": self.codebase}
