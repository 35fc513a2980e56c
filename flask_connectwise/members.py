"""``MemberCheck``: is a change's member one ConnectWise will accept as its author?

A member must exist, be active and be a full (not an API-class) member: an API member is no
person, so time billed to it is time nobody can account for. The answer is looked up once
and reused for ``CONNECTWISE_MEMBER_CACHE_SECONDS`` (the cache key holds the tenant and its
credentials revision, so new credentials ask again). An unusable member raises
:class:`~flask_connectwise.errors.MemberUnusableError` in plain words; a failure to reach
ConnectWise propagates (the caller decides whether to retry).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .cachesafe import SafeCache
from .errors import FieldError, MemberUnusableError, NotFoundError
from .records import Member

if TYPE_CHECKING:
    from .tenants import Tenants

#: ``licenseClass`` of an API member (no person behind it).
API_LICENSE_CLASS = "A"


def _unusable(message: str) -> MemberUnusableError:
    """The refusal, as a field error on ``member`` (as ConnectWise itself would name it)."""
    return MemberUnusableError(
        message, status=400, errors=(FieldError("InvalidMember", message, field="member"),)
    )


def _shown(identifier: str) -> str:
    """The identifier as a message shows it: one line, at most 100 characters."""
    return " ".join(str(identifier).split())[:100]


class MemberCheck:
    """Checks members for one app (``cw.members``)."""

    def __init__(self, tenants: Tenants, cache: SafeCache, config: Mapping[str, Any]) -> None:
        self.tenants = tenants
        self.cache = cache
        self.config = config

    @staticmethod
    def cache_key(tenant_id: str, revision: int, identifier: str) -> str:
        digest = hashlib.sha256(
            f"{tenant_id}\x00{revision}\x00{identifier.casefold()}".encode()
        ).hexdigest()[:32]
        return f"connectwise:member:{digest}"

    def check(self, tenant_id: str, identifier: str) -> Member:
        """The usable member with this identifier (or e-mail address);
        :class:`MemberUnusableError` when it does not exist, is inactive or is an API member.
        Transport errors (:class:`~flask_connectwise.errors.ConnectWiseError`) propagate."""
        value = _shown(identifier)
        client, revision = self.tenants.client_and_revision(tenant_id)
        key = self.cache_key(tenant_id, revision, value)
        ttl = int(self.config.get("CONNECTWISE_MEMBER_CACHE_SECONDS", 300))
        cached = self.cache.get(key) if ttl > 0 else None
        if isinstance(cached, dict):
            if "problem" in cached:
                raise _unusable(str(cached["problem"]))
            try:
                return Member(**cached["member"])
            except (KeyError, TypeError):
                pass  # an older shape: ask again
        try:
            member = self._look_up(client, value)
        except MemberUnusableError as exc:
            if ttl > 0:
                self.cache.set(key, {"problem": exc.message}, timeout=ttl)
            raise
        if ttl > 0:
            self.cache.set(key, {"member": _member_fields(member)}, timeout=ttl)
        return member

    def display_name(self, tenant_id: str, identifier: str, *, deadline: float = 1.0) -> str | None:
        """The member's name (``"John Doe"``) for a page that shows who did something: from
        the cache, else asked within ``deadline`` seconds; ``None`` when ConnectWise does not
        know the member or does not answer (the page shows the identifier then)."""
        from .client import call_deadline

        try:
            with call_deadline(deadline):
                member = self.check(tenant_id, identifier)
        except Exception:  # a page must render: the identifier is shown instead
            return None
        name = member.name
        return name if name and name != member.identifier else None

    @staticmethod
    def _look_up(client: Any, value: str) -> Member:
        if "@" in value:
            found = client.find_member(value)  # active members only
            if found is None:
                raise _unusable(f"No active ConnectWise member has the e-mail address '{value}'")
            member: Member = found
        else:
            try:
                member = client.member(value)
            except NotFoundError:
                raise _unusable(f"ConnectWise member '{value}' does not exist") from None
        if member.inactive:
            raise _unusable(f"ConnectWise member '{member.identifier or value}' is inactive")
        if (member.license_class or "").upper() == API_LICENSE_CLASS:
            raise _unusable(
                f"'{member.identifier or value}' is an API member; time cannot be logged as it"
            )
        return member


def _member_fields(member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "identifier": member.identifier,
        "first_name": member.first_name,
        "last_name": member.last_name,
        "email": member.email,
        "inactive": member.inactive,
        "license_class": member.license_class,
    }
