"""A host app for the TicketSearchField tests: a plain Flask-WTF page and a Flask-Admin view.

Built on ``tests.hosts.make_host_app`` (Flask-SQLAlchemy, Flask-WTF CSRF, the extension),
with tenant A configured against the sandbox and hooks that a browser can satisfy (no headers).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask, flash, get_flashed_messages, redirect, render_template_string, url_for
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired

from flask_connectwise.fields import TicketSearchField, register_static
from flask_connectwise.testing import configure_tenant
from tests.hosts import TENANT_A, make_host_app
from tests.serving import serve as serve  # re-exported for the tests

MEMBER = "jdoe"

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Voice configuration</title></head>
<body>
<main>
<h1>Voice configuration</h1>
{% for category, message in get_flashed_messages(with_categories=true) %}
  <p class="flash flash-{{ category }}" role="status">{{ message }}</p>
{% endfor %}
<form method="post" action="{{ url_for('voice') }}" novalidate>
  {{ form.csrf_token }}
  <p>{{ form.upn.label }} {{ form.upn(size=40) }}</p>
  <div>{{ form.ticket.label }} {{ form.ticket() }}
  {% for error in form.ticket.errors %}<p class="error" id="ticket-error">{{ error }}</p>{% endfor %}
  </div>
  <p><button type="submit">Save</button></p>
</form>
</main>
</body>
</html>
"""


class VoiceForm(FlaskForm):
    upn = StringField("User principal name", validators=[DataRequired()])
    ticket = TicketSearchField("ConnectWise ticket")


def make_field_app(
    database_url: str, sandbox: Any | None = None, *, admin: bool = True, **config: Any
) -> Flask:
    """The host app; ``sandbox``: configure tenant A against it; ``config``: more Flask settings
    (bench/submit.py turns the background sweep on)."""
    app = make_host_app(database_url, **config)
    register_static(app)
    db = app.extensions["test_db"]
    cw = app.extensions["test_cw"]
    app.config["WTF_CSRF_TIME_LIMIT"] = None

    @cw.authorize
    def authorize(tenant_id: str, action: str) -> bool:
        return tenant_id == TENANT_A and action == "use"

    @cw.current_tenant
    def current_tenant() -> str:
        return TENANT_A

    @cw.current_member
    def current_member() -> str:
        return MEMBER

    class Device(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "device"
        id = sa.Column(sa.Integer, primary_key=True)
        name = sa.Column(sa.String(64), nullable=False)
        extension = sa.Column(sa.String(16), nullable=True)
        sip_password = sa.Column(sa.String(64), nullable=True)

        def __str__(self) -> str:
            return self.name

    app.extensions["test_device"] = Device
    with app.app_context():
        db.create_all()
        db.session.add(Device(name="sip-01", extension="201", sip_password="hunter2"))
        db.session.commit()

    @app.route("/voice", methods=["GET", "POST"])
    def voice() -> Any:
        form = VoiceForm()
        if form.validate_on_submit():
            device = db.session.get(Device, 1)
            device.extension = "204"  # the host's own change
            form.ticket.log_change(f"Voice configuration updated for {form.upn.data}")
            db.session.commit()
            if not form.ticket.data:
                flash("Saved without a ticket.", "info")
            return redirect(url_for("voice"))
        return render_template_string(PAGE, form=form, get_flashed_messages=get_flashed_messages)

    if admin:
        from flask_admin import Admin
        from flask_admin.contrib.sqla import ModelView

        from flask_connectwise.changelogging import ConnectWiseChangeLogging

        class DeviceView(ConnectWiseChangeLogging, ModelView):
            form_base_class = FlaskForm
            column_list = ("name", "extension")

        host_admin = Admin(app, name="Host admin")
        host_admin.add_view(DeviceView(Device, db, name="Devices", endpoint="device"))

    if sandbox is not None:
        configure_tenant(app, TENANT_A, sandbox)
    return app


def change_rows(app: Flask) -> list[Any]:
    """The app's change-log rows, oldest first, detached (readable after the app context)."""
    with app.app_context():
        model = app.extensions["test_cw"].models.ChangeLog
        session = app.extensions["test_db"].session
        found = session.query(model).order_by(model.id).all()
        for row in found:
            session.expunge(row)
        return found
