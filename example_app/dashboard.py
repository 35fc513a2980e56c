"""The dashboard: a tenant's Teams voice users and the form that changes one of them.

Saving applies the change to ``example_voice_configurations`` and, when the operator picked a
ConnectWise ticket, logs "Voice configuration updated for <upn>: <what changed>" to it in the
same transaction (each change named by its form label: "Phone number: +1 … → +1 …") (``form.ticket.log_change(...)`` before ``db.session.commit()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import flash, redirect, request
from flask_admin import AdminIndexView, expose
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from flask_connectwise.fields import TicketSearchField

from .admin import LoginRequired
from .extensions import db
from .models import VoiceConfiguration, utcnow

VOICE_ROUTING_POLICIES = [
    SelectChoice("Global", "Global (org-wide default)"),
    SelectChoice("US-Only", "US-Only"),
    SelectChoice("International", "International"),
    SelectChoice("Emergency-Only", "Emergency-Only"),
]
DIAL_PLANS = [
    SelectChoice("Global", "Global (org-wide default)"),
    SelectChoice("US-DialPlan", "US-DialPlan"),
    SelectChoice("UK-DialPlan", "UK-DialPlan"),
    SelectChoice("DE-DialPlan", "DE-DialPlan"),
]
#: The fields a change note lists, with their form labels (the words the note uses for them).
LABELS = {
    "phone_number": "Phone number",
    "voice_routing_policy": "Voice routing policy",
    "dial_plan": "Dial plan",
}
UPN_RE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PHONE_RE = r"^\+[1-9][0-9 ]{5,24}$"


class VoiceConfigurationForm(FlaskForm):
    """A Teams user's voice settings, and the ticket the change is logged to."""

    upn = StringField(
        "User principal name",
        validators=[
            DataRequired(),
            Length(max=254),
            Regexp(UPN_RE, message="Enter a user principal name such as jane@contoso.com"),
        ],
    )
    phone_number = StringField(
        LABELS["phone_number"],
        validators=[
            Optional(),
            Length(max=32),
            Regexp(PHONE_RE, message="Enter the number in E.164 form, e.g. +1 425 555 0100"),
        ],
        description="E.164, e.g. +1 425 555 0100. Empty: no number assigned.",
    )
    voice_routing_policy = SelectField(
        LABELS["voice_routing_policy"], choices=VOICE_ROUTING_POLICIES
    )
    dial_plan = SelectField(LABELS["dial_plan"], choices=DIAL_PLANS)
    ticket = TicketSearchField("ConnectWise ticket (optional)")


def snapshot(config: VoiceConfiguration | None) -> dict[str, str | None]:
    """The values a change note compares (all ``None`` for a user not configured yet)."""
    return {name: getattr(config, name, None) if config else None for name in LABELS}


def describe_changes(before: Mapping[str, str | None], after: Mapping[str, str | None]) -> str:
    """``Phone number: +1 555 0100 → +1 555 0199; Dial plan: Global → UK-DialPlan`` ("" if equal)."""
    parts = []
    for name, label in LABELS.items():
        old, new = before.get(name), after.get(name)
        if old != new:
            parts.append(f"{label}: {old or '(none)'} → {new or '(none)'}")
    return "; ".join(parts)


def find_configuration(tenant_id: str, upn: str) -> VoiceConfiguration | None:
    """The tenant's configuration for ``upn`` (case-insensitive), or ``None``."""
    return db.session.execute(
        db.select(VoiceConfiguration).filter_by(tenant_id=tenant_id, upn=upn.strip().lower())
    ).scalar_one_or_none()


class DashboardView(LoginRequired, AdminIndexView):
    """The home page: Teams voice configuration of the logged-in user's tenant."""

    @expose("/", methods=("GET", "POST"))
    def index(self) -> Any:
        tenant = current_user.tenant_id
        wanted = request.args.get("upn", "").strip()
        existing = find_configuration(tenant, wanted) if wanted else None
        form = VoiceConfigurationForm(obj=existing)
        if form.validate_on_submit():
            return self.save(form, tenant)
        rows = (
            db.session.execute(
                db.select(VoiceConfiguration)
                .filter_by(tenant_id=tenant)
                .order_by(VoiceConfiguration.upn)
            )
            .scalars()
            .all()
        )
        return self.render(
            "example/dashboard.html",
            form=form,
            rows=rows,
            editing=existing,
            tenant=current_user.tenant,
        )

    def save(self, form: VoiceConfigurationForm, tenant: str) -> Any:
        """Apply the change, log it to the ticket (if one was picked), commit, redirect."""
        upn = (form.upn.data or "").strip().lower()
        config = find_configuration(tenant, upn)
        before = snapshot(config)
        if config is None:
            config = VoiceConfiguration(tenant_id=tenant, upn=upn)
            db.session.add(config)
        config.phone_number = " ".join((form.phone_number.data or "").split()) or None
        config.voice_routing_policy = form.voice_routing_policy.data or "Global"
        config.dial_plan = form.dial_plan.data or "Global"
        changes = describe_changes(before, snapshot(config))
        if not changes:
            db.session.rollback()
            if form.ticket.report_replay():  # a double click: the first submit saved and logged
                flash(f"Voice configuration saved for {upn}.", "success")
            else:
                flash(f"Nothing changed for {upn}.", "info")
            return redirect(self.get_url(".index", upn=upn))
        config.updated_by = current_user.email
        config.updated_at = utcnow()
        form.ticket.log_change(f"Voice configuration updated for {upn}: {changes}")
        db.session.commit()
        flash(f"Voice configuration saved for {upn}: {changes}.", "success")
        return redirect(self.get_url(".index", upn=upn))
