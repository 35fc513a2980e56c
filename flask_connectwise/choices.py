"""What an admin chooses for a tenant from ConnectWise's own lists: its companies, the work
type and role of time entries, and the status to set per board.

Each choice keeps the id ConnectWise uses and the name it showed when chosen, so messages and
the admin view name things without asking ConnectWise again. Parsed from the JSON API's
camelCase input (:func:`parse_companies` ...), stored as JSON text in the credentials row
(:func:`dump` / the ``load_*`` functions). Flask-free.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .validation import MAX_ID, InputError, check_text

#: ``company_scope`` values: no choice yet (every company, with a warning), every company on
#: purpose (an MSP's internal tenant), or the listed companies only.
SCOPE_UNSET, SCOPE_ALL, SCOPE_LISTED = "unset", "all", "listed"
COMPANY_SCOPES = (SCOPE_UNSET, SCOPE_ALL, SCOPE_LISTED)
#: ``note_visibility`` values, as ConnectWise's three note flags.
NOTE_VISIBILITIES = ("internal", "discussion", "resolution")
#: ``billable_option`` values (ConnectWise's ``BillableOption`` enum).
BILLABLE_OPTIONS = ("Billable", "DoNotBill", "NoCharge", "NoDefault")
#: ``ticket_policy`` values: refuse an unusable ticket before submit, or accept it with a
#: warning and skip the steps that cannot succeed.
TICKET_POLICIES = ("refuse", "warn")
#: Most companies one tenant may list, and most boards with a status.
MAX_COMPANIES = 50
MAX_BOARDS = 200
#: Longest name kept for a company, work type or role (longer names are cut).
NAME_MAX = 100


@dataclass(frozen=True)
class CompanyChoice:
    """A ConnectWise company the tenant serves."""

    id: int
    identifier: str = ""
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.identifier or f"company {self.id}"


@dataclass(frozen=True)
class WorkChoice:
    """A work type or work role, by id, with the name ConnectWise gave it."""

    id: int
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or f"#{self.id}"


@dataclass(frozen=True)
class BoardStatusChoice:
    """The status a change sets on tickets of one board."""

    board_id: int
    status_id: int
    board_name: str = ""
    status_name: str = ""

    @property
    def board_label(self) -> str:
        return self.board_name or f"board {self.board_id}"

    @property
    def status_label(self) -> str:
        return self.status_name or f"status {self.status_id}"


# -- input -----------------------------------------------------------------------------------


def _id(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        if isinstance(value, str) and value.isascii() and value.isdigit():
            return _id(int(value), field)
        raise InputError(field, f"{field} must be a ConnectWise id (a whole number from 1)")
    return value


def _name(data: Mapping[str, Any], key: str, field: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > NAME_MAX:
        raise InputError(field, f"{field}.{key} must be text of at most {NAME_MAX} characters")
    return check_text(field, value.strip())


def _one_of(value: Any, field: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InputError(field, f"{field} must be one of {', '.join(allowed)}")
    return value


def parse_scope(value: Any) -> str:
    return _one_of(value, "companyScope", COMPANY_SCOPES)


def parse_visibility(value: Any, field: str = "noteVisibility") -> str:
    return _one_of(value, field, NOTE_VISIBILITIES)


def parse_policy(value: Any) -> str:
    return _one_of(value, "ticketPolicy", TICKET_POLICIES)


def parse_billable(value: Any) -> str | None:
    """A billable option, or ``None`` (blank: ConnectWise decides)."""
    if value in (None, ""):
        return None
    return _one_of(value, "billableOption", BILLABLE_OPTIONS)


def parse_companies(value: Any) -> tuple[CompanyChoice, ...]:
    """``[{id, identifier?, name?} | id, ...]``: distinct companies, in the order given."""
    field = "companies"
    if not isinstance(value, list):
        raise InputError(field, "companies must be a list of ConnectWise companies")
    if len(value) > MAX_COMPANIES:
        raise InputError(field, f"companies may list at most {MAX_COMPANIES} companies")
    chosen: dict[int, CompanyChoice] = {}
    for item in value:
        if isinstance(item, Mapping):
            company = CompanyChoice(
                _id(item.get("id"), field),
                _name(item, "identifier", field),
                _name(item, "name", field),
            )
        else:
            company = CompanyChoice(_id(item, field))
        chosen.setdefault(company.id, company)
    return tuple(chosen.values())


def parse_work(value: Any, field: str) -> WorkChoice | None:
    """``{id, name?}``, an id, or ``None``/blank (none chosen)."""
    if value in (None, ""):
        return None
    if isinstance(value, Mapping):
        return WorkChoice(_id(value.get("id"), field), _name(value, "name", field))
    return WorkChoice(_id(value, field))


def parse_board_statuses(value: Any) -> tuple[BoardStatusChoice, ...]:
    """``[{boardId, statusId, boardName?, statusName?}, ...]``: one status per board."""
    field = "boardStatuses"
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InputError(field, "boardStatuses must be a list of {boardId, statusId}")
    if len(value) > MAX_BOARDS:
        raise InputError(field, f"boardStatuses may map at most {MAX_BOARDS} boards")
    chosen: dict[int, BoardStatusChoice] = {}
    for item in value:
        if not isinstance(item, Mapping):
            raise InputError(field, "each boardStatuses entry must be {boardId, statusId}")
        board_id = _id(item.get("boardId"), field)
        if board_id in chosen:
            raise InputError(field, f"board {board_id} is mapped twice")
        chosen[board_id] = BoardStatusChoice(
            board_id,
            _id(item.get("statusId"), field),
            _name(item, "boardName", field),
            _name(item, "statusName", field),
        )
    return tuple(chosen.values())


# -- storage ---------------------------------------------------------------------------------


def dump(value: WorkChoice | Iterable[CompanyChoice | BoardStatusChoice] | None) -> str | None:
    """JSON text for a choice column (``None`` stays ``None``; an empty list is ``None``)."""
    if value is None:
        return None
    if isinstance(value, WorkChoice):
        return json.dumps(asdict(value), ensure_ascii=False)
    items = [asdict(item) for item in value]
    return json.dumps(items, ensure_ascii=False) if items else None


def _loaded(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None  # a damaged cell reads as "not chosen", never as a crash


def load_companies(text: str | None) -> tuple[CompanyChoice, ...]:
    items = _loaded(text)
    if not isinstance(items, list):
        return ()
    return tuple(
        CompanyChoice(int(i["id"]), str(i.get("identifier", "")), str(i.get("name", "")))
        for i in items
        if isinstance(i, dict) and isinstance(i.get("id"), int)
    )


def load_work(text: str | None) -> WorkChoice | None:
    item = _loaded(text)
    if not isinstance(item, dict) or not isinstance(item.get("id"), int):
        return None
    return WorkChoice(int(item["id"]), str(item.get("name", "")))


def load_board_statuses(text: str | None) -> tuple[BoardStatusChoice, ...]:
    items = _loaded(text)
    if not isinstance(items, list):
        return ()
    return tuple(
        BoardStatusChoice(
            int(i["board_id"]),
            int(i["status_id"]),
            str(i.get("board_name", "")),
            str(i.get("status_name", "")),
        )
        for i in items
        if isinstance(i, dict)
        and isinstance(i.get("board_id"), int)
        and isinstance(i.get("status_id"), int)
    )


# -- the JSON API's view ---------------------------------------------------------------------


def company_json(company: CompanyChoice) -> dict[str, Any]:
    return {"id": company.id, "identifier": company.identifier, "name": company.name}


def work_json(work: WorkChoice | None) -> dict[str, Any] | None:
    return None if work is None else {"id": work.id, "name": work.name}


def board_status_json(choice: BoardStatusChoice) -> dict[str, Any]:
    return {
        "boardId": choice.board_id,
        "boardName": choice.board_name,
        "statusId": choice.status_id,
        "statusName": choice.status_name,
    }
