"""The example app's own tables: tenants, users, Teams voice configurations, 3CX users and DIDs.

Every tenant-owned row carries ``tenant_id`` (the tenant's slug, also the ConnectWise tenant id
the extension keys its rows by). Table names start with ``example_`` so they never collide with
the extension's ``connectwise_*`` tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db

Role = Literal["admin", "operator"]
ROLES: tuple[Role, ...] = ("admin", "operator")


def utcnow() -> datetime:
    """Naive UTC now (what the columns store)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Tenant(db.Model):  # type: ignore[name-defined,misc]
    """A customer of the MSP running this app."""

    __tablename__ = "example_tenants"

    slug: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), nullable=False)

    def __str__(self) -> str:
        return self.name


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    """Someone who logs in: an ``admin`` or an ``operator`` of one tenant."""

    __tablename__ = "example_users"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    password_hash: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    role: Mapped[str] = mapped_column(sa.String(16), nullable=False, default="operator")
    tenant_id: Mapped[str] = mapped_column(
        sa.String(64), sa.ForeignKey("example_tenants.slug"), nullable=False, index=True
    )
    #: The user's ConnectWise member identifier (notes and time entries are attributed to it).
    cw_member: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)

    tenant: Mapped[Tenant] = relationship(Tenant, lazy="joined")

    def set_password(self, password: str) -> None:
        """Store a salted hash of ``password`` (never the password)."""
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        """Whether ``password`` matches the stored hash."""
        return check_password_hash(self.password_hash, password)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def may(self, tenant_id: str, action: str) -> bool:
        """The ConnectWise rule: own tenant only; operators ``use``, admins also ``configure``."""
        if tenant_id != self.tenant_id:
            return False
        if action == "use":
            return self.role in ROLES
        return action == "configure" and self.is_admin

    def __str__(self) -> str:
        return self.email


class VoiceConfiguration(db.Model):  # type: ignore[name-defined,misc]
    """A Teams Phone user's voice settings (what the dashboard edits)."""

    __tablename__ = "example_voice_configurations"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "upn", name="uq_example_voice_upn"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(
        sa.String(64), sa.ForeignKey("example_tenants.slug"), nullable=False, index=True
    )
    upn: Mapped[str] = mapped_column(sa.String(254), nullable=False)
    phone_number: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    voice_routing_policy: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    dial_plan: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime, nullable=False, default=utcnow, onupdate=utcnow
    )
    updated_by: Mapped[str | None] = mapped_column(sa.String(254), nullable=True)


class PhoneUser(db.Model):  # type: ignore[name-defined,misc]
    """A 3CX user (an extension)."""

    __tablename__ = "example_threecx_users"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "extension", name="uq_example_threecx_extension"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(
        sa.String(64), sa.ForeignKey("example_tenants.slug"), nullable=False, index=True
    )
    extension: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    first_name: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    last_name: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    email: Mapped[str | None] = mapped_column(sa.String(254), nullable=True)
    outbound_caller_id: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)

    def __str__(self) -> str:
        return f"{self.extension} — {self.first_name} {self.last_name}"


class Did(db.Model):  # type: ignore[name-defined,misc]
    """A 3CX DID (inbound number) and the extension it rings."""

    __tablename__ = "example_threecx_dids"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "number", name="uq_example_did_number"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(
        sa.String(64), sa.ForeignKey("example_tenants.slug"), nullable=False, index=True
    )
    number: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    description: Mapped[str | None] = mapped_column(sa.String(200), nullable=True)
    destination_extension: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)

    def __str__(self) -> str:
        return self.number
