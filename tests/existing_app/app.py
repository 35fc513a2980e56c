"""An existing Flask-Admin app with its own Flask-Migrate history, after adding flask-connectwise.

The lines marked ``# +`` are the ones docs/existing-app.md adds; tests/test_existing_app.py
builds this app from scratch in a temporary folder and follows the docs with the ``flask`` CLI.
"""

from flask import Flask
from flask_admin import Admin
from flask_admin.contrib.sqla import ModelView
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

import flask_connectwise.migrate  # +
from flask_connectwise import ConnectWise, ConnectWiseChangeLogging  # +

app = Flask(__name__)
app.config.from_prefixed_env()  # FLASK_SQLALCHEMY_DATABASE_URI, FLASK_SECRET_KEY, ...
app.config.setdefault("CONNECTWISE_DEFAULT_TENANT", "main")  # + one tenant: no hook needed
db = SQLAlchemy(app)
migrate = Migrate(app, db)
admin = Admin(app)
flask_connectwise.migrate.register(migrate)  # + then, once: flask connectwise migrations merge
cw = ConnectWise(app, db=db, admin=admin)  # + the ConnectWise menu in your admin


@cw.authorize  # +
def can(tenant_id: str, action: str) -> bool:  # + "use" (search, log) or "configure"
    return True  # + your own login check here (e.g. current_user.is_admin)


@cw.current_member  # + optional: the operator's ConnectWise member, billed for the time
def operator_member() -> str | None:  # +
    return "jdoe"  # + e.g. current_user.connectwise_member (None: the note only)


class Phone(db.Model):  # type: ignore[name-defined]
    id = db.Column(db.Integer, primary_key=True)
    number = db.Column(db.String(32), nullable=False)
    owner = db.Column(db.String(64))


class PhoneView(ConnectWiseChangeLogging, ModelView):  # + was: class PhoneView(ModelView)
    pass


admin.add_view(PhoneView(Phone, db))
