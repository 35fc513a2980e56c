"""Deterministic seed data: boards and statuses, companies, members, priorities and tickets.

Anchor tickets (the same for every seed): 12345 "Printer offline ..." (Help Desk, New, one note),
12346 (Voice Services, In Progress, two notes and one time entry), 12347 (Help Desk,
"Waiting on Parts": no time entries allowed), 12348 (Help Desk, Closed). Ticket ids run
12201..12460; the other tickets vary with ``seed``.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

API_PREFIX = "v4_6_release/apis/3.0"
FIRST_TICKET, LAST_TICKET = 12201, 12460
BASE_TIME = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)

BOARDS = [(1, "Help Desk"), (21, "Voice Services"), (35, "Projects")]
STATUS_BASE = {1: 100, 21: 120, 35: 140}
# name, closedStatus, inactive, timeEntryNotAllowed, defaultFlag, escalationStatus
STATUSES = [
    ("New", False, False, False, True, "NotResponded"),
    ("In Progress", False, False, False, False, "Responded"),
    ("Waiting on Customer", False, False, False, False, "ResolutionPlan"),
    ("Scheduled", False, False, False, False, "Responded"),
    ("Waiting on Parts", False, False, True, False, "ResolutionPlan"),
    ("Completed", True, False, False, False, "Resolved"),
    ("Closed", True, False, False, False, "Resolved"),
    ("Legacy - Do Not Use", False, True, False, False, "NoEscalation"),
]
COMPANIES = [
    (250, "Contoso", "Contoso Ltd", "Seattle", "WA"),
    (251, "Fabrikam", "Fabrikam Inc", "Tampa", "FL"),
    (252, "Northwind", "Northwind Traders", "Portland", "OR"),
    (253, "AdventureWorks", "Adventure Works Cycles", "Denver", "CO"),
    (254, "Tailspin", "Tailspin Toys", "Austin", "TX"),
    (255, "Woodgrove", "Woodgrove Bank", "Boston", "MA"),
    (256, "LitwareLaw", "Litware Legal LLP", "Chicago", "IL"),
    (2, "SandboxMSP", "Sandbox MSP (our company)", "Tampa", "FL"),
]
# id, identifier, first, last, email, inactive
API_MEMBER_ID = 176
MEMBERS = [
    (API_MEMBER_ID, "SandboxAPI", "Sandbox", "API Member", "api@company.com", False),
    (180, "jdoe", "John", "Doe", "jdoe@company.com", False),
    (181, "asmith", "Alice", "Smith", "asmith@company.com", False),
    (182, "tech", "Tech", "Support", "tech@company.com", False),
    (183, "mgarcia", "Maria", "Garcia", "mgarcia@company.com", False),
    (184, "kpatel", "Kiran", "Patel", "kpatel@company.com", False),
    (185, "rbrown", "Robert", "Brown", "rbrown@company.com", True),
]
# licenseClass: "F" full member, "A" API member (the enum also has "C" and "X"; their meaning is
# not in the sources, so no seed member uses them).
# Work types (time/workTypes): id, name, billTime, rate, rateType, inactiveFlag, overallDefaultFlag.
WORK_TYPES = [
    (3, "Regular", "Billable", 1.0, "Multiplier", False, True),
    (4, "Remote Support", "Billable", 1.0, "Multiplier", False, False),
    (5, "After Hours", "Billable", 1.5, "Multiplier", False, False),
    (6, "Warranty", "NoCharge", 0.0, "Multiplier", False, False),
    (7, "Internal Admin", "DoNotBill", 0.0, "Multiplier", False, False),
    (8, "Travel (legacy)", "DoNotBill", 0.0, "Multiplier", True, False),
]
# Work roles (time/workRoles): id, name, hourlyRate, inactiveFlag, locationIds. Boards sit at
# location 2 (Tampa Office); role 15 is valid only at location 3 (a role "not valid for the
# selected location").
WORK_ROLES = [
    (11, "System Engineer", 150.0, False, [2]),
    (12, "Help Desk Technician", 95.0, False, [2, 3]),
    (13, "Network Engineer", 165.0, False, [2]),
    (14, "Project Manager", 140.0, False, [2, 3]),
    (15, "Voice Engineer", 155.0, False, [3]),
    (16, "Junior Technician", 75.0, True, [2]),
]
PRIORITIES = [
    (6, "Priority 1 - Emergency Response", 1, "red"),
    (15, "Priority 2 - Quick Response", 2, "orange"),
    (8, "Priority 3 - Normal Response", 3, "blue"),
    (7, "Priority 4 - Schedule Maintenance", 4, "green"),
]
SUMMARIES = [
    "Printer offline - {dept}",
    "Printer offline after Windows update",
    "{dept} printer not printing double-sided",
    "Scanner to email not working on {dept} copier",
    "Cannot connect to VPN from home",
    "VPN disconnects every few minutes for {name}",
    "Teams voice: calls drop after 30 seconds",
    "Teams voice: {name} cannot dial out",
    "Teams voice: enable calling plan for {name}",
    "3CX: extension {ext} not registering",
    "3CX queue not ringing agents in {dept}",
    "New DID needed for {dept}",
    "Port DID {did} to Teams Phone",
    "DID {did} routes to the wrong auto attendant",
    "Desk phone {ext} shows No Service",
    "Phone system: voicemail to email not working",
    "Outlook keeps asking for password",
    "New user setup: {name}",
    "Offboard user: {name}",
    "Laptop running slow for {name}",
    "Backup job failed on {host}",
    "Server {host} low disk space",
    "Firewall firmware update",
    "Wi-Fi dropping in {dept}",
    "Shared mailbox access for {name}",
    "MFA reset for {name}",
    "Install Adobe Acrobat for {name}",
    "Microsoft 365 license request",
    "Antivirus alert on {host}",
    "Conference room display not working",
    "Website SSL certificate renewal",
]
PROJECT_SUMMARIES = [
    "Project: migrate file server to SharePoint",
    "Project: Teams Phone rollout",
    "Project: replace core switch",
    "Project: 3CX to Teams voice migration",
]
DEPTS = ["Accounting", "Front Desk", "Sales", "Warehouse", "HR", "Reception", "Legal", "2nd floor"]
NAMES = ["Dana Lee", "Sam Ortiz", "Priya Nair", "Tom Becker", "Ana Silva", "Chris Young"]
HOSTS = ["SRV-DC01", "SRV-FS01", "SRV-SQL02", "WS-ACC-07", "SRV-APP03"]
ANCHORS = {
    12345: ("Printer offline - front desk HP LaserJet", 1, "New", 250),
    12346: ("Teams voice: DID +1 555 0100 not routing to 3CX queue", 21, "In Progress", 251),
    12347: ("Printer fuser replacement - waiting on part", 1, "Waiting on Parts", 252),
    12348: ("VPN drops every 10 minutes for remote staff", 1, "Closed", 250),
}


def iso(value: datetime) -> str:
    """ConnectWise's UTC timestamp format, ``2025-01-06T09:00:00Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    """The current time in ConnectWise's format."""
    return iso(datetime.now(UTC))


def href(base: str, path: str) -> str:
    """Absolute ``_info`` link, e.g. ``{base}/v4_6_release/apis/3.0/service/boards/1``."""
    return f"{base}/{API_PREFIX}/{path}"


def member_ref(base: str, member: dict[str, Any]) -> dict[str, Any]:
    """Short member reference ``{id, identifier, name, _info}``."""
    return {
        "id": member["id"],
        "identifier": member["identifier"],
        "name": f"{member['firstName']} {member['lastName']}",
        "_info": {"member_href": href(base, f"system/members/{member['id']}")},
    }


def company_ref(base: str, company: dict[str, Any]) -> dict[str, Any]:
    """Short company reference ``{id, identifier, name, _info}``."""
    return {
        "id": company["id"],
        "identifier": company["identifier"],
        "name": company["name"],
        "_info": {"company_href": href(base, f"company/companies/{company['id']}")},
    }


def board_ref(base: str, board: dict[str, Any]) -> dict[str, Any]:
    """Short board reference ``{id, name, _info}``."""
    link = href(base, f"service/boards/{board['id']}")
    return {"id": board["id"], "name": board["name"], "_info": {"board_href": link}}


def status_ref(base: str, status: dict[str, Any]) -> dict[str, Any]:
    """Short status reference ``{id, name, _info}``."""
    link = href(base, f"service/boards/{status['board']['id']}/statuses/{status['id']}")
    return {"id": status["id"], "name": status["name"], "_info": {"status_href": link}}


@dataclass
class SeedData:
    """Everything the sandbox serves, keyed by id."""

    boards: dict[int, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[int, dict[str, Any]] = field(default_factory=dict)
    companies: dict[int, dict[str, Any]] = field(default_factory=dict)
    members: dict[int, dict[str, Any]] = field(default_factory=dict)
    priorities: dict[int, dict[str, Any]] = field(default_factory=dict)
    work_types: dict[int, dict[str, Any]] = field(default_factory=dict)
    work_roles: dict[int, dict[str, Any]] = field(default_factory=dict)
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    notes: dict[int, dict[str, Any]] = field(default_factory=dict)
    time_entries: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_note_id: int = 1001
    next_time_id: int = 5001


COLLECTIONS = (
    "boards",
    "statuses",
    "companies",
    "members",
    "priorities",
    "work_types",
    "work_roles",
    "tickets",
    "notes",
    "time_entries",
)


def dump(seed: SeedData) -> str:
    """Serialise ``seed`` (a fast way to restore it later with ``load``)."""
    blob: dict[str, Any] = {name: list(getattr(seed, name).values()) for name in COLLECTIONS}
    blob.update(next_note_id=seed.next_note_id, next_time_id=seed.next_time_id)
    return json.dumps(blob)


def load(text: str) -> SeedData:
    """Rebuild a ``SeedData`` from ``dump`` output."""
    blob = json.loads(text)
    return SeedData(
        **{name: {r["id"]: r for r in blob[name]} for name in COLLECTIONS},
        next_note_id=blob["next_note_id"],
        next_time_id=blob["next_time_id"],
    )


def build(seed: int, base: str) -> SeedData:
    """Build the seed data; hrefs point at ``base`` (the sandbox URL)."""
    rng = random.Random(seed)
    data = SeedData()
    stamp = iso(BASE_TIME - timedelta(days=400))
    for board_id, name in BOARDS:
        data.boards[board_id] = _board(base, board_id, name, stamp)
        for order, spec in enumerate(STATUSES):
            status = _status(
                base, data.boards[board_id], STATUS_BASE[board_id] + order + 1, order, spec, stamp
            )
            data.statuses[status["id"]] = status
    for company_id, ident, name, city, state in COMPANIES:
        data.companies[company_id] = _company(base, company_id, ident, name, city, state, stamp)
    for member_id, ident, first, last, email, inactive in MEMBERS:
        data.members[member_id] = _member(
            base, member_id, ident, first, last, email, inactive, stamp
        )
    for prio_id, name, sort, color in PRIORITIES:
        link = href(base, f"service/priorities/{prio_id}")
        data.priorities[prio_id] = {
            "id": prio_id,
            "name": name,
            "sort": sort,
            "color": color,
            "_info": {"priority_href": link, "image_href": f"{link}/image?lm={stamp}"},
        }
    for work_type in WORK_TYPES:
        data.work_types[work_type[0]] = _work_type(base, work_type, stamp)
    for role_id, name, rate, inactive, locations in WORK_ROLES:
        data.work_roles[role_id] = {
            "id": role_id,
            "name": name,
            "hourlyRate": rate,
            "inactiveFlag": inactive,
            "locationIds": list(locations),
            "integrationXref": None,
            "_info": {"lastUpdated": stamp, "updatedBy": "SandboxAPI"},
        }
    for ticket_id in range(FIRST_TICKET, LAST_TICKET + 1):
        data.tickets[ticket_id] = _ticket(base, data, rng, ticket_id)
    _seed_activity(base, data, rng)
    return data


def _board(base: str, board_id: int, name: str, stamp: str) -> dict[str, Any]:
    return {
        "id": board_id,
        "name": name,
        "location": {"id": 2, "name": "Tampa Office"},
        "department": {"id": 10, "identifier": "Services", "name": "Professional Services"},
        "inactiveFlag": False,
        "projectFlag": name == "Projects",
        "signOffOnCloseFlag": False,
        "timeEntryDiscussionFlag": False,
        "workRole": {
            "id": 11,
            "name": "System Engineer",
            "_info": {"workRole_href": href(base, "time/workRoles/11")},
        },
        "workType": {
            "id": 3,
            "name": "Regular",
            "_info": {"workType_href": href(base, "time/workTypes/3")},
        },
        "billTime": "Billable",
        "_info": {
            "lastUpdated": stamp,
            "updatedBy": "SandboxAPI",
            "statuses_href": href(base, f"service/boards/{board_id}/statuses"),
        },
    }


def _work_type(base: str, spec: tuple[Any, ...], stamp: str) -> dict[str, Any]:
    type_id, name, bill_time, rate, rate_type, inactive, default = spec
    return {
        "id": type_id,
        "name": name,
        "billTime": bill_time,
        "rate": rate,
        "rateType": rate_type,
        "costMultiplier": 1.0,
        "hoursMin": 0.0,
        "hoursMax": 0.0,
        "roundBillHoursTo": 0.25,
        "accrualType": None,
        "inactiveFlag": inactive,
        "overallDefaultFlag": default,
        "activityDefaultFlag": False,
        "utilizationFlag": bill_time == "Billable",
        "integrationXRef": None,
        "_info": {
            "lastUpdated": stamp,
            "updatedBy": "SandboxAPI",
            "self_href": href(base, f"time/workTypes/{type_id}"),
        },
    }


def _status(
    base: str,
    board: dict[str, Any],
    status_id: int,
    order: int,
    spec: tuple[Any, ...],
    stamp: str,
) -> dict[str, Any]:
    name, closed, inactive, no_time, default, escalation = spec
    return {
        "id": status_id,
        "name": name,
        "board": board_ref(base, board),
        "sortOrder": order,
        "displayOnBoard": not inactive,
        "inactive": inactive,
        "closedStatus": closed,
        "timeEntryNotAllowed": no_time,
        "defaultFlag": default,
        "escalationStatus": escalation,
        "customerPortalFlag": not inactive,
        "_info": {"lastUpdated": stamp, "updatedBy": "SandboxAPI"},
    }


def _company(
    base: str, company_id: int, ident: str, name: str, city: str, state: str, stamp: str
) -> dict[str, Any]:
    contact_id = company_id * 10 + 1
    return {
        "id": company_id,
        "identifier": ident,
        "name": name,
        "status": {"id": 1, "name": "Active"},
        "types": [{"id": 1, "name": "Client"}],
        "addressLine1": f"{company_id} Main Street",
        "addressLine2": None,
        "city": city,
        "state": state,
        "zip": f"{30000 + company_id}",
        "phoneNumber": f"555010{company_id % 100:02d}",
        "website": f"www.{ident.lower()}.example",
        "defaultContact": {
            "id": contact_id,
            "name": f"{ident} Office Manager",
            "_info": {"contact_href": href(base, f"company/contacts/{contact_id}")},
        },
        "deletedFlag": False,
        "_info": {
            "lastUpdated": stamp,
            "updatedBy": "SandboxAPI",
            "dateEntered": stamp,
            "contacts_href": href(base, f"company/contacts?conditions=company/id={company_id}"),
        },
    }


def _member(
    base: str,
    member_id: int,
    ident: str,
    first: str,
    last: str,
    email: str,
    inactive: bool,
    stamp: str,
) -> dict[str, Any]:
    return {
        "id": member_id,
        "identifier": ident,
        "firstName": first,
        "lastName": last,
        "title": "API Member" if member_id == API_MEMBER_ID else "Service Technician",
        "officeEmail": email,
        "primaryEmail": email,
        "defaultEmail": "Office",
        "inactiveFlag": inactive,
        "inactiveDate": stamp if inactive else None,
        "licenseClass": "A" if member_id == API_MEMBER_ID else "F",
        "adminFlag": False,
        "dailyCapacity": 8.0,
        "timeZone": {"id": 1, "name": "US Eastern"},
        "_info": {
            "lastUpdated": stamp,
            "updatedBy": "SandboxAPI",
            "image_href": href(base, f"system/members/{member_id}/image"),
        },
    }


def _ticket(base: str, data: SeedData, rng: random.Random, ticket_id: int) -> dict[str, Any]:
    offset = timedelta(hours=7 * (ticket_id - FIRST_TICKET), minutes=rng.randint(0, 59))
    entered = BASE_TIME + offset
    if ticket_id in ANCHORS:
        summary, board_id, status_name, company_id = ANCHORS[ticket_id]
    else:
        board_id = rng.choices([1, 21, 35], weights=[6, 3, 1])[0]
        pool = PROJECT_SUMMARIES if board_id == 35 else SUMMARIES
        summary = rng.choice(pool).format(
            dept=rng.choice(DEPTS),
            name=rng.choice(NAMES),
            host=rng.choice(HOSTS),
            ext=rng.randint(100, 299),
            did=f"+1 555 01{rng.randint(10, 99)}",
        )
        status_name = rng.choices(
            [
                "New",
                "In Progress",
                "Waiting on Customer",
                "Scheduled",
                "Waiting on Parts",
                "Completed",
                "Closed",
            ],
            weights=[30, 20, 8, 6, 2, 8, 16],
        )[0]
        company_id = rng.choice([c[0] for c in COMPANIES[:-1]])
    board = data.boards[board_id]
    status = next(
        s
        for s in data.statuses.values()
        if s["board"]["id"] == board_id and s["name"] == status_name
    )
    company = data.companies[company_id]
    owner = data.members[rng.choice([180, 181, 182, 183, 184])]
    priority = data.priorities[rng.choice([6, 15, 8, 8, 8, 7])]
    updated = entered + timedelta(hours=rng.randint(1, 72))
    closed = bool(status["closedStatus"])
    link = href(base, f"service/tickets/{ticket_id}")
    return {
        "id": ticket_id,
        "summary": summary[:100],
        "recordType": "ServiceTicket",
        "board": board_ref(base, board),
        "status": status_ref(base, status),
        "company": company_ref(base, company),
        "site": {
            "id": company_id * 10,
            "name": "Main",
            "_info": {
                "site_href": href(base, f"company/companies/{company_id}/sites/{company_id * 10}")
            },
        },
        "siteName": "Main",
        "contact": company["defaultContact"],
        "contactName": company["defaultContact"]["name"],
        "contactEmailAddress": f"office@{company['identifier'].lower()}.example",
        "type": {"id": 8, "name": "Incident"} if board_id != 35 else {"id": 9, "name": "Project"},
        "subType": None,
        "item": None,
        "owner": member_ref(base, owner),
        "priority": {
            "id": priority["id"],
            "name": priority["name"],
            "sort": priority["sort"],
            "_info": dict(priority["_info"]),
        },
        "serviceLocation": {"id": 1, "name": "Remote"},
        "source": {"id": 2, "name": "Phone"},
        "severity": "Medium",
        "impact": "Medium",
        "allowAllClientsPortalView": False,
        "customerUpdatedFlag": False,
        "automaticEmailContactFlag": False,
        "automaticEmailResourceFlag": False,
        "automaticEmailCcFlag": False,
        "closedDate": iso(updated) if closed else None,
        "closedBy": owner["identifier"] if closed else None,
        "closedFlag": closed,
        "actualHours": None,
        "approved": True,
        "resources": owner["identifier"],
        "billTime": "NoDefault",
        "billExpenses": "Billable",
        "billProducts": "Billable",
        "mobileGuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "_info": {
            "lastUpdated": iso(updated),
            "updatedBy": owner["identifier"],
            "dateEntered": iso(entered),
            "enteredBy": "SandboxAPI",
            "activities_href": f"{link}/activities",
            "scheduleentries_href": f"{link}/scheduleentries",
            "documents_href": f"{link}/documents",
            "configurations_href": f"{link}/configurations",
            "tasks_href": f"{link}/tasks",
            "notes_href": f"{link}/notes",
            "products_href": f"{link}/products",
            "timeentries_href": f"{link}/timeentries",
        },
    }


def make_note(
    base: str,
    note_id: int,
    ticket_id: int,
    member: dict[str, Any],
    body: dict[str, Any],
    created: str,
) -> dict[str, Any]:
    """A ServiceNote record as ConnectWise returns it."""
    detail = bool(body.get("detailDescriptionFlag"))
    internal = bool(body.get("internalAnalysisFlag"))
    resolution = bool(body.get("resolutionFlag"))
    return {
        "id": note_id,
        "ticketId": ticket_id,
        "text": body.get("text"),
        "detailDescriptionFlag": detail,
        "internalAnalysisFlag": internal,
        "resolutionFlag": resolution,
        "issueFlag": bool(body.get("issueFlag")),
        "member": member_ref(base, member),
        "contact": None,
        "customerUpdatedFlag": bool(body.get("customerUpdatedFlag")),
        "processNotifications": body.get("processNotifications"),
        "dateCreated": created,
        "createdBy": member["identifier"],
        "internalFlag": internal,
        "externalFlag": detail or resolution,
        "_info": {
            "lastUpdated": created,
            "updatedBy": member["identifier"],
            "ticket_href": href(base, f"service/tickets/{ticket_id}"),
        },
    }


def _seed_activity(base: str, data: SeedData, rng: random.Random) -> None:
    """Give the anchors (and some random tickets) notes and time entries."""
    from .store import build_time_entry  # local import: store imports this module

    def note(ticket_id: int, member_id: int, text: str, flag: str) -> None:
        ticket = data.tickets[ticket_id]
        created = ticket["_info"]["dateEntered"]
        body = {"text": text, flag: True, "processNotifications": False}
        data.notes[data.next_note_id] = make_note(
            base, data.next_note_id, ticket_id, data.members[member_id], body, created
        )
        data.next_note_id += 1

    def time(ticket_id: int, member_id: int, hours: float, text: str) -> None:
        ticket = data.tickets[ticket_id]
        start = datetime.fromisoformat(ticket["_info"]["dateEntered"]) + timedelta(hours=1)
        end = start + timedelta(hours=hours)
        entry = build_time_entry(
            base,
            data.next_time_id,
            ticket,
            data.companies[ticket["company"]["id"]],
            data.members[member_id],
            {"notes": text, "addToInternalAnalysisFlag": True},
            iso(start),
            iso(end),
            hours,
            ticket["_info"]["dateEntered"],
        )
        data.time_entries[data.next_time_id] = entry
        data.next_time_id += 1
        ticket["actualHours"] = round((ticket["actualHours"] or 0) + hours, 2)

    note(12345, 182, "Front desk printer shows offline on all PCs.", "detailDescriptionFlag")
    note(12346, 180, "Calls to +1 555 0100 ring once then drop.", "detailDescriptionFlag")
    note(
        12346, 180, "Checked 3CX SIP trunk: DID missing from inbound rules.", "internalAnalysisFlag"
    )
    time(12346, 180, 1.0, "Traced DID routing between Teams and 3CX.")
    for ticket_id in sorted(data.tickets):
        if ticket_id in ANCHORS or rng.random() > 0.12:
            continue
        note(
            ticket_id,
            rng.choice([180, 181, 182]),
            "Initial description from the portal.",
            "detailDescriptionFlag",
        )
        if rng.random() < 0.5:
            time(
                ticket_id,
                rng.choice([180, 181, 183]),
                rng.choice([0.25, 0.5, 1.0, 1.5]),
                "Remote session.",
            )
