"""Tenants' ConnectWise credentials: parsing admin input, storage with encrypted secrets, and
the masked view the routes and the admin show.

Flask-free: works on a SQLAlchemy session, the models and a keyring. (Formerly
``flask_connectwise.settings``, which still re-exports it; the app's own configuration is
:mod:`flask_connectwise.config`.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import choices
from .choices import SCOPE_LISTED, SCOPE_UNSET, BoardStatusChoice, CompanyChoice, WorkChoice
from .crypto import Cell, Keyring
from .models import CREDENTIALS_TABLE, SECRET_COLUMNS, Models
from .urlpolicy import UnsafeURLError, URLPolicy
from .validation import MAX_ID, InputError, optional_text, optional_whole_number

#: What the masked view shows in place of a secret (and before a secret's last four characters).
MASKED = "••••"
_COMPANY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True, repr=False)
class TenantSettings:
    """One tenant's decrypted settings. ``repr()`` masks the secrets."""

    tenant_id: str
    base_url: str
    company_id: str
    public_key: str
    private_key: str
    client_id: str
    default_time_minutes: int = 15
    auto_update_status: bool = False
    default_status_id: int | None = None
    revision: int = 1
    #: ``unset`` (no choice yet: every company, with a warning), ``all`` or ``listed``.
    company_scope: str = SCOPE_UNSET
    #: The companies whose tickets may be picked (``company_scope == "listed"``).
    companies: tuple[CompanyChoice, ...] = ()
    work_type: WorkChoice | None = None
    work_role: WorkChoice | None = None
    #: Sent on every time entry; ``None`` lets ConnectWise decide.
    billable_option: str | None = None
    #: ``internal`` (default), ``discussion`` or ``resolution``.
    note_visibility: str = "internal"
    #: Let ConnectWise e-mail the ticket's contact about Discussion notes.
    email_contact: bool = False
    board_statuses: tuple[BoardStatusChoice, ...] = ()
    #: ``refuse`` a ticket a change cannot fully use, or ``warn`` and skip what cannot succeed.
    ticket_policy: str = "refuse"

    def __repr__(self) -> str:
        return (
            f"TenantSettings(tenant_id={self.tenant_id!r}, base_url={self.base_url!r}, "
            f"company_id={self.company_id!r}, revision={self.revision})"
        )

    @property
    def company_ids(self) -> tuple[int, ...] | None:
        """The companies searches and tickets are limited to; ``None``: not limited."""
        if self.company_scope != SCOPE_LISTED:
            return None
        return tuple(c.id for c in self.companies)

    @property
    def company_names(self) -> str:
        """The tenant's companies for messages: "Contoso Ltd or Contoso Labs"; never a bare id
        (companies stored by id only are "one of this tenant's companies")."""
        named = [c.label for c in self.companies if c.name or c.identifier]
        if not named:
            return "one of this tenant's companies"
        if len(named) < len(self.companies):
            named.append("another of this tenant's companies")
        return " or ".join(named)

    def serves_company(self, company_id: int | None) -> bool:
        """Whether a ticket of ``company_id`` belongs to this tenant."""
        ids = self.company_ids
        return ids is None or company_id in ids

    def status_for_board(self, board_id: int | None) -> BoardStatusChoice | None:
        """The status mapped for ``board_id``, or ``None``."""
        return next((c for c in self.board_statuses if c.board_id == board_id), None)


def mask(hint: str | None) -> str:
    """``••••abcd``: the mask and at most the last four characters."""
    return f"{MASKED}{(hint or '')[-4:]}"


def _hint(secret: str) -> str:
    # Short secrets would be shown almost whole: reveal nothing of those.
    return secret[-4:] if len(secret) >= 12 else ""


@dataclass(frozen=True)
class CredentialsInput:
    """Validated admin input; ``None`` secrets mean "keep the stored value"."""

    base_url: str
    company_id: str
    public_key: str | None
    private_key: str | None
    client_id: str | None
    default_time_minutes: int | None
    auto_update_status: bool | None
    default_status_id: int | None
    clear_default_status: bool = False
    # ``None`` (or the ``keep_*`` flags): the key was left out, keep the stored value.
    company_scope: str | None = None
    companies: tuple[CompanyChoice, ...] | None = None
    work_type: WorkChoice | None = None
    keep_work_type: bool = True
    work_role: WorkChoice | None = None
    keep_work_role: bool = True
    billable_option: str | None = None
    keep_billable_option: bool = True
    note_visibility: str | None = None
    email_contact: bool | None = None
    board_statuses: tuple[BoardStatusChoice, ...] | None = None
    ticket_policy: str | None = None

    @classmethod
    def parse(cls, payload: Any, policy: URLPolicy) -> CredentialsInput:
        if not isinstance(payload, Mapping):
            raise InputError("body", "The body must be a JSON object")
        # Not ASCII-only: the URL policy decides on (IDNA) host names.
        base_url = optional_text(payload, "baseUrl", max_length=255)
        if not base_url:
            raise InputError("baseUrl", "baseUrl is required")
        try:
            base_url = policy.check(base_url)
        except UnsafeURLError as exc:
            raise InputError("baseUrl", str(exc)) from None
        company_id = optional_text(payload, "companyId", max_length=64, ascii_only=True)
        if not company_id:
            raise InputError("companyId", "companyId is required")
        if not _COMPANY_RE.match(company_id):
            raise InputError("companyId", "companyId may hold letters, digits, '.', '_' and '-'")
        secrets = {}
        for key in ("publicKey", "privateKey", "clientId"):
            secrets[key] = optional_text(payload, key, max_length=128, ascii_only=True)
        auto = payload.get("autoUpdateStatus")
        if auto is not None and not isinstance(auto, bool):
            raise InputError("autoUpdateStatus", "autoUpdateStatus must be true or false")
        status_given = "defaultStatusId" in payload
        email = payload.get("emailContact")
        if email is not None and not isinstance(email, bool):
            raise InputError("emailContact", "emailContact must be true or false")
        companies = (
            choices.parse_companies(payload["companies"])
            if payload.get("companies") is not None
            else None
        )
        scope = payload.get("companyScope")
        scope = choices.parse_scope(scope) if scope is not None else None
        if scope is None and companies is not None:
            scope = SCOPE_LISTED if companies else None
        if scope == SCOPE_LISTED and not companies:
            raise InputError(
                "companies",
                'Choose at least one company, or set companyScope to "all" for a tenant that'
                " serves every company",
            )
        return cls(
            base_url=base_url,
            company_id=company_id,
            public_key=secrets["publicKey"],
            private_key=secrets["privateKey"],
            client_id=secrets["clientId"],
            default_time_minutes=optional_whole_number(
                payload, "defaultTimeMinutes", low=1, high=1440
            ),
            auto_update_status=auto,
            default_status_id=optional_whole_number(payload, "defaultStatusId", low=1, high=MAX_ID),
            clear_default_status=status_given and payload.get("defaultStatusId") in (None, ""),
            company_scope=scope,
            companies=companies,
            work_type=choices.parse_work(payload.get("workType"), "workType"),
            keep_work_type="workType" not in payload,
            work_role=choices.parse_work(payload.get("workRole"), "workRole"),
            keep_work_role="workRole" not in payload,
            billable_option=choices.parse_billable(payload.get("billableOption")),
            keep_billable_option="billableOption" not in payload,
            note_visibility=(
                choices.parse_visibility(payload["noteVisibility"])
                if payload.get("noteVisibility") is not None
                else None
            ),
            email_contact=email,
            board_statuses=(
                choices.parse_board_statuses(payload["boardStatuses"])
                if "boardStatuses" in payload
                else None
            ),
            ticket_policy=(
                choices.parse_policy(payload["ticketPolicy"])
                if payload.get("ticketPolicy") is not None
                else None
            ),
        )


class CredentialsStore:
    """Reads and writes tenants' credentials; secrets are encrypted per cell."""

    def __init__(self, session: Any, models: Models, keyring_loader: Callable[[], Keyring]) -> None:
        self._session = session
        self._models = models
        self._keyring_loader = keyring_loader

    @property
    def keyring(self) -> Keyring:
        return self._keyring_loader()

    def row(self, tenant_id: str) -> Any:
        model = self._models.Credentials
        return self._session.query(model).filter(model.tenant_id == tenant_id).one_or_none()

    def load(self, tenant_id: str) -> TenantSettings | None:
        """The tenant's decrypted settings, or ``None`` when none are stored."""
        row = self.row(tenant_id)
        if row is None:
            return None
        return self.decrypt_row(row)

    def decrypt_row(self, row: Any) -> TenantSettings:
        keyring = self.keyring
        secrets = {
            column: keyring.decrypt(
                getattr(row, column), Cell(CREDENTIALS_TABLE, column, row.tenant_id)
            )
            for column in SECRET_COLUMNS
        }
        return TenantSettings(
            tenant_id=row.tenant_id,
            base_url=row.base_url,
            company_id=row.company_id,
            default_time_minutes=row.default_time_minutes,
            auto_update_status=row.auto_update_status,
            default_status_id=row.default_status_id,
            revision=row.revision,
            public_key=secrets["public_key"],
            private_key=secrets["private_key"],
            client_id=secrets["client_id"],
            company_scope=row.company_scope or SCOPE_UNSET,
            companies=choices.load_companies(row.companies),
            work_type=choices.load_work(row.work_type),
            work_role=choices.load_work(row.work_role),
            billable_option=row.billable_option,
            note_visibility=row.note_visibility or "internal",
            email_contact=bool(row.email_contact),
            board_statuses=choices.load_board_statuses(row.board_statuses),
            ticket_policy=row.ticket_policy or "refuse",
        )

    def save(self, tenant_id: str, data: CredentialsInput, *, actor: str | None = None) -> Any:
        """Create or update the tenant's row (not committed). Blank secrets keep stored ones."""
        row = self.row(tenant_id)
        creating = row is None
        if creating:
            missing = [
                key
                for key, value in (
                    ("publicKey", data.public_key),
                    ("privateKey", data.private_key),
                    ("clientId", data.client_id),
                )
                if not value
            ]
            if missing:
                raise InputError(
                    missing[0], f"{missing[0]} is required when first storing credentials"
                )
            row = self._models.Credentials(tenant_id=tenant_id, revision=0)
        keyring = self.keyring
        for column, value in (
            ("public_key", data.public_key),
            ("private_key", data.private_key),
            ("client_id", data.client_id),
        ):
            if value:
                setattr(
                    row, column, keyring.encrypt(value, Cell(CREDENTIALS_TABLE, column, tenant_id))
                )
                if column == "public_key":
                    row.public_key_hint = _hint(value)
                elif column == "client_id":
                    row.client_id_hint = _hint(value)
        row.base_url = data.base_url
        row.company_id = data.company_id
        if data.default_time_minutes is not None:
            row.default_time_minutes = data.default_time_minutes
        elif creating:
            row.default_time_minutes = 15
        if data.auto_update_status is not None:
            row.auto_update_status = data.auto_update_status
        elif creating:
            row.auto_update_status = False
        if data.default_status_id is not None:
            row.default_status_id = data.default_status_id
        elif data.clear_default_status:
            row.default_status_id = None
        self._save_choices(row, data, creating)
        row.revision = (row.revision or 0) + 1
        row.updated_by = actor
        row.last_error = None
        if creating:
            self._session.add(row)
        return row

    @staticmethod
    def _save_choices(row: Any, data: CredentialsInput, creating: bool) -> None:
        """The tenant's company, time and status choices (left-out keys keep stored ones)."""
        if data.companies is not None:
            row.companies = choices.dump(data.companies)
        if data.company_scope is not None:
            row.company_scope = data.company_scope
            if data.company_scope != SCOPE_LISTED and data.companies is None:
                row.companies = None
        elif creating:
            row.company_scope = SCOPE_UNSET
        if row.company_scope == SCOPE_LISTED and not choices.load_companies(row.companies):
            raise InputError("companies", "Choose at least one company")
        if not data.keep_work_type:
            row.work_type = choices.dump(data.work_type)
        if not data.keep_work_role:
            row.work_role = choices.dump(data.work_role)
        if not data.keep_billable_option:
            row.billable_option = data.billable_option
        if data.note_visibility is not None:
            row.note_visibility = data.note_visibility
        elif creating:
            row.note_visibility = "internal"
        if data.email_contact is not None:
            row.email_contact = data.email_contact
        elif creating:
            row.email_contact = False
        if data.board_statuses is not None:
            row.board_statuses = choices.dump(data.board_statuses)
        if data.ticket_policy is not None:
            row.ticket_policy = data.ticket_policy
        elif creating:
            row.ticket_policy = "refuse"

    @staticmethod
    def public_view(row: Any | None) -> dict[str, Any]:
        """The credentials as the HTTP contract shows them: never a secret."""
        if row is None:
            return {
                "configured": False,
                "baseUrl": None,
                "companyId": None,
                "publicKey": None,
                "clientId": None,
                "privateKey": None,
                "defaultTimeMinutes": 15,
                "autoUpdateStatus": False,
                "defaultStatusId": None,
                "companyScope": SCOPE_UNSET,
                "companies": [],
                "workType": None,
                "workRole": None,
                "billableOption": None,
                "noteVisibility": "internal",
                "emailContact": False,
                "boardStatuses": [],
                "ticketPolicy": "refuse",
                "warnings": [],
                "updatedAt": None,
                "lastVerifiedAt": None,
                "lastError": None,
            }
        return {
            "configured": True,
            "baseUrl": row.base_url,
            "companyId": row.company_id,
            "publicKey": mask(row.public_key_hint),
            "privateKey": MASKED,
            "clientId": mask(row.client_id_hint),
            "defaultTimeMinutes": row.default_time_minutes,
            "autoUpdateStatus": row.auto_update_status,
            "defaultStatusId": row.default_status_id,
            "companyScope": row.company_scope or SCOPE_UNSET,
            "companies": [choices.company_json(c) for c in choices.load_companies(row.companies)],
            "workType": choices.work_json(choices.load_work(row.work_type)),
            "workRole": choices.work_json(choices.load_work(row.work_role)),
            "billableOption": row.billable_option,
            "noteVisibility": row.note_visibility or "internal",
            "emailContact": bool(row.email_contact),
            "boardStatuses": [
                choices.board_status_json(c)
                for c in choices.load_board_statuses(row.board_statuses)
            ],
            "ticketPolicy": row.ticket_policy or "refuse",
            "warnings": setting_warnings(row),
            "updatedAt": _iso(row.updated_at),
            "lastVerifiedAt": _iso(row.last_verified_at),
            "lastError": row.last_error,
        }


def setting_warnings(row: Any) -> list[str]:
    """Plain-words warnings about a tenant's choices (the API's ``warnings``, the admin view)."""
    warnings = []
    if (row.company_scope or SCOPE_UNSET) == SCOPE_UNSET:
        warnings.append(
            "No ConnectWise company chosen: operators can pick any company's tickets. Choose"
            ' this tenant\'s companies, or "All companies" for your own internal tenant.'
        )
    if not row.work_type or not row.work_role:
        warnings.append(
            "No default work type or work role: ConnectWise tenants that require them will"
            " refuse time entries. Choose both."
        )
    return warnings


def _iso(value: datetime | None) -> str | None:
    return value.replace(microsecond=0).isoformat() + "Z" if value else None
