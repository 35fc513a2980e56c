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

    def __repr__(self) -> str:
        return (
            f"TenantSettings(tenant_id={self.tenant_id!r}, base_url={self.base_url!r}, "
            f"company_id={self.company_id!r}, revision={self.revision})"
        )


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
        row.revision = (row.revision or 0) + 1
        row.updated_by = actor
        row.last_error = None
        if creating:
            self._session.add(row)
        return row

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
            "updatedAt": _iso(row.updated_at),
            "lastVerifiedAt": _iso(row.last_verified_at),
            "lastError": row.last_error,
        }


def _iso(value: datetime | None) -> str | None:
    return value.replace(microsecond=0).isoformat() + "Z" if value else None
