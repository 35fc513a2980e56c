"""Demo mode: the ConnectWise sandbox, a migrated SQLite database, demo users and data.

Demo mode is on when ``CONNECTWISE_DEMO`` is ``1``, off when it is ``0``, and otherwise on unless
the database already holds real (non-loopback) ConnectWise credentials. In the process that
serves requests (not in the Flask reloader's watcher, nor in ``flask db ...`` and other CLI
commands) it then, once per process:

1. starts the sandbox on a free loopback port (``CONNECTWISE_SANDBOX_PORT`` to pin it) on a
   daemon thread;
2. runs the migrations (``flask db upgrade``: one head, the extension's branch merged by
   ``migrations/versions/ex0002_merge_connectwise.py``);
3. adds the two tenants, their admins and operators, and a little 3CX and Teams data (only
   what is missing);
4. points each tenant's ConnectWise credentials at the sandbox, unless an admin stored real
   ones, and turns the feature flag on where nobody set it;
5. prints the app's address and the logins.

The encryption key is generated once into ``instance/connectwise_keys`` (never into the
repository) unless ``CONNECTWISE_ENCRYPTION_KEYS`` is set. Loopback base URLs are accepted
(``CONNECTWISE_ALLOW_LOOPBACK_HTTP``) in demo mode only, and only on the sandbox's port
(``CONNECTWISE_LOOPBACK_PORTS``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import get_debug_flag
from werkzeug.serving import is_running_from_reloader

from flask_connectwise.crypto import generate_key
from flask_connectwise.sandbox import Sandbox
from flask_connectwise.urlpolicy import URLPolicy

from .config import keys_file, read_or_create
from .extensions import cw, db

log = logging.getLogger("example_app.demo")

DEMO_PASSWORD = "demo"  # noqa: S105 - the demo users' published password
#: The sandbox's keys in demo mode: public demo values, valid for the local sandbox only.
SANDBOX_COMPANY = "sandbox"
SANDBOX_PUBLIC_KEY = "demo-public-key"
SANDBOX_PRIVATE_KEY = "demo-private-key"
SANDBOX_CLIENT_ID = "00000000-0000-4000-8000-00000000d3e0"
#: Help Desk's "In Progress" status in the sandbox.
HELP_DESK_IN_PROGRESS = 102


@dataclass(frozen=True)
class DemoUser:
    email: str
    name: str
    role: str
    tenant: str
    member: str


TENANTS = {"contoso": "Contoso Ltd", "fabrikam": "Fabrikam Inc"}
USERS = (
    DemoUser("admin@contoso.example", "Alice Smith", "admin", "contoso", "asmith"),
    DemoUser("operator@contoso.example", "John Doe", "operator", "contoso", "jdoe"),
    DemoUser("admin@fabrikam.example", "Maria Garcia", "admin", "fabrikam", "mgarcia"),
    DemoUser("operator@fabrikam.example", "Tech Support", "operator", "fabrikam", "tech"),
)
#: Per tenant: the ConnectWise company it serves (the sandbox's Contoso Ltd and Fabrikam Inc),
#: the time-entry defaults, where notes go, and the status each board's tickets move to.
#: Contoso maps only Help Desk, so a change on a Voice Services ticket leaves its status alone.
TENANT_SETTINGS: dict[str, dict[str, Any]] = {
    "contoso": {
        "defaultTimeMinutes": 15,
        "autoUpdateStatus": True,
        "defaultStatusId": HELP_DESK_IN_PROGRESS,
        "companyScope": "listed",
        "companies": [{"id": 250, "identifier": "Contoso", "name": "Contoso Ltd"}],
        "workType": {"id": 3, "name": "Regular"},
        "workRole": {"id": 11, "name": "System Engineer"},
        "billableOption": "Billable",
        "noteVisibility": "internal",
        "boardStatuses": [
            {
                "boardId": 1,
                "boardName": "Help Desk",
                "statusId": HELP_DESK_IN_PROGRESS,
                "statusName": "In Progress",
            }
        ],
    },
    "fabrikam": {
        "defaultTimeMinutes": 30,
        "autoUpdateStatus": False,
        "companyScope": "listed",
        "companies": [{"id": 251, "identifier": "Fabrikam", "name": "Fabrikam Inc"}],
        "workType": {"id": 4, "name": "Remote Support"},
        "workRole": {"id": 12, "name": "Help Desk Technician"},
        "billableOption": "DoNotBill",
        "noteVisibility": "discussion",
        "ticketPolicy": "warn",
    },
}
VOICE = {
    "contoso": [
        ("dana.lee@contoso.example", "+1 425 555 0101", "US-Only", "US-DialPlan"),
        ("sam.ortiz@contoso.example", "+1 425 555 0102", "International", "US-DialPlan"),
        ("priya.nair@contoso.example", None, "Global", "Global"),
    ],
    "fabrikam": [
        ("tom.becker@fabrikam.example", "+44 20 7946 0101", "International", "UK-DialPlan"),
        ("ana.silva@fabrikam.example", "+1 813 555 0140", "US-Only", "US-DialPlan"),
    ],
}
PHONE_USERS = {
    "contoso": [
        ("201", "Dana", "Lee", "dana.lee@contoso.example", "+1 425 555 0100"),
        ("202", "Sam", "Ortiz", "sam.ortiz@contoso.example", "+1 425 555 0100"),
        ("210", "Reception", "Desk", None, "+1 425 555 0100"),
    ],
    "fabrikam": [
        ("301", "Tom", "Becker", "tom.becker@fabrikam.example", "+1 813 555 0199"),
        ("302", "Ana", "Silva", "ana.silva@fabrikam.example", "+1 813 555 0199"),
    ],
}
DIDS = {
    "contoso": [
        ("+1 425 555 0100", "Main number", "210"),
        ("+1 425 555 0150", "Sales direct line", "202"),
    ],
    "fabrikam": [("+1 813 555 0199", "Main number", "301")],
}

_lock = threading.Lock()
_sandbox: Sandbox | None = None


def demo_sandbox(port: int = 0) -> Sandbox:
    """This process's demo sandbox, started on the first call (a daemon thread)."""
    global _sandbox
    with _lock:
        if _sandbox is None:
            _sandbox = Sandbox(
                host="127.0.0.1",
                port=port,
                company_id=SANDBOX_COMPANY,
                public_key=SANDBOX_PUBLIC_KEY,
                private_key=SANDBOX_PRIVATE_KEY,
                client_id=SANDBOX_CLIENT_ID,
            ).start()
        return _sandbox


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` names this machine (a sandbox), not a real ConnectWise."""
    host = (urlsplit(url).hostname or "").strip("[]")
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def has_real_credentials(app: Flask) -> bool:
    """Whether any tenant's stored credentials name a host other than loopback."""
    with app.app_context():
        try:
            with db.engine.connect() as conn:
                urls = conn.execute(sa.text("SELECT base_url FROM connectwise_credentials"))
                return any(not is_loopback_url(str(url)) for (url,) in urls)
        except sa.exc.SQLAlchemyError:  # no such table yet: a fresh database
            return False


def decide(app: Flask) -> bool:
    """Settle ``CONNECTWISE_DEMO`` and set what demo mode needs before the extension starts."""
    demo = app.config.get("CONNECTWISE_DEMO")
    if demo is None:
        demo = not has_real_credentials(app)
    app.config["CONNECTWISE_DEMO"] = bool(demo)
    if demo:
        # Loopback URLs on the sandbox's port only: a pinned port now, a free one once started.
        app.config["CONNECTWISE_ALLOW_LOOPBACK_HTTP"] = True
        port = int(app.config.get("CONNECTWISE_SANDBOX_PORT") or 0)
        app.config["CONNECTWISE_LOOPBACK_PORTS"] = [port] if port else []
        if not app.config.get("CONNECTWISE_ENCRYPTION_KEYS"):
            app.config["CONNECTWISE_ENCRYPTION_KEYS"] = read_or_create(
                keys_file(app), lambda: generate_key("demo1")
            )
    return bool(demo)


def serving_here() -> bool:
    """Whether this process serves requests: ``False`` in ``flask db ...`` and other commands,
    and in the watcher process of ``flask run``'s reloader (its child serves)."""
    ctx = click.get_current_context(silent=True)
    if ctx is None:  # a WSGI server, a test, python -c ...
        return True
    if ctx.command.name != "run":
        return False
    reload = ctx.params.get("reload")
    if reload is None:
        reload = get_debug_flag()
    return not reload or is_running_from_reloader()


@contextlib.contextmanager
def logging_kept() -> Iterator[None]:
    """Undo what Alembic's ``fileConfig`` does to the root logger (it drops its handlers)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)


def run_migrations(app: Flask) -> None:
    """``flask db upgrade``: the app's history, merged with the extension's branch."""
    from flask_migrate import upgrade

    with app.app_context(), logging_kept():
        upgrade()


def seed_users(password: str = DEMO_PASSWORD) -> None:
    """Add the demo tenants and users that are missing (existing ones are left alone)."""
    from .models import Tenant, User

    for slug, name in TENANTS.items():
        if db.session.get(Tenant, slug) is None:
            db.session.add(Tenant(slug=slug, name=name))
    db.session.flush()
    for spec in USERS:
        if db.session.execute(db.select(User).filter_by(email=spec.email)).first() is None:
            user = User(
                email=spec.email,
                name=spec.name,
                role=spec.role,
                tenant_id=spec.tenant,
                cw_member=spec.member,
            )
            user.set_password(password)
            db.session.add(user)
    db.session.commit()


def seed_data() -> None:
    """Add demo Teams and 3CX rows to each tenant that has none of that kind."""
    from .models import Did, PhoneUser, VoiceConfiguration

    def empty(model: Any, tenant: str) -> bool:
        return db.session.execute(db.select(model.id).filter_by(tenant_id=tenant)).first() is None

    for tenant in TENANTS:
        if empty(VoiceConfiguration, tenant):
            for upn, number, policy, plan in VOICE[tenant]:
                db.session.add(
                    VoiceConfiguration(
                        tenant_id=tenant,
                        upn=upn,
                        phone_number=number,
                        voice_routing_policy=policy,
                        dial_plan=plan,
                    )
                )
        if empty(PhoneUser, tenant):
            for ext, first, last, email, caller_id in PHONE_USERS[tenant]:
                db.session.add(
                    PhoneUser(
                        tenant_id=tenant,
                        extension=ext,
                        first_name=first,
                        last_name=last,
                        email=email,
                        outbound_caller_id=caller_id,
                    )
                )
        if empty(Did, tenant):
            for number, description, ext in DIDS[tenant]:
                db.session.add(
                    Did(
                        tenant_id=tenant,
                        number=number,
                        description=description,
                        destination_extension=ext,
                    )
                )
    db.session.commit()


def configure_tenants(
    credentials: Mapping[str, str], *, force: bool = False, enable: bool = True
) -> list[str]:
    """Point each demo tenant at the ConnectWise in ``credentials`` (a sandbox's).

    A tenant whose stored credentials name a real ConnectWise is left alone (unless ``force``).
    The feature flag is turned on where no flag row exists yet (``enable``), so an admin who
    turned it off keeps it off. Returns the tenants (re)configured.
    """
    tenants = cw.tenants
    done = []
    for tenant in TENANTS:
        row = tenants.credentials_row(tenant)
        if row is not None and not force and not is_loopback_url(row.base_url):
            continue
        tenants.save_credentials(
            tenant,
            {
                "baseUrl": credentials["base_url"],
                "companyId": credentials["company_id"],
                "publicKey": credentials["public_key"],
                "privateKey": credentials["private_key"],
                "clientId": credentials["client_id"],
                **TENANT_SETTINGS[tenant],
            },
            actor="demo",
        )
        if enable and tenants.flag_row(tenant) is None:
            tenants.set_flag(tenant, True, actor="demo")
        done.append(tenant)
    return done


def app_url() -> str:
    """Where ``flask run`` serves (``http://127.0.0.1:5000`` when unknown)."""
    ctx = click.get_current_context(silent=True)
    params = ctx.params if ctx is not None else {}
    host = params.get("host") or "127.0.0.1"
    port = params.get("port") or 5000
    return f"http://{host}:{port}"


def banner(sandbox: Sandbox) -> str:
    """What demo mode prints: the addresses and the logins."""
    width = max(len(u.email) for u in USERS)
    lines = [
        "",
        " * flask-connectwise example app — DEMO MODE (CONNECTWISE_DEMO=0 turns it off)",
        f" * ConnectWise sandbox: {sandbox.url}",
        f" * Open {app_url()}/login and sign in as (password: {DEMO_PASSWORD}):",
    ]
    for user in USERS:
        lines.append(
            f"     {user.email:<{width}}  {user.role:<8}  tenant {user.tenant:<8}  "
            f"ConnectWise member {user.member}"
        )
    lines.append("")
    return "\n".join(lines)


def allow_sandbox_port(app: Flask, port: int) -> None:
    """Accept loopback base URLs on the sandbox's ``port`` (and no other loopback port)."""
    if not app.config.get("CONNECTWISE_ALLOW_LOOPBACK_HTTP"):
        return
    ports = [int(p) for p in app.config.get("CONNECTWISE_LOOPBACK_PORTS") or []]
    if port not in ports:
        app.config["CONNECTWISE_LOOPBACK_PORTS"] = [*ports, port]
    with app.app_context():
        cw.tenants.policy = URLPolicy.from_config(app.config)


def start(app: Flask, *, quiet: bool = False) -> Sandbox:
    """Start the sandbox, migrate, seed and configure (idempotent; see the module docstring)."""
    sandbox = demo_sandbox(int(app.config.get("CONNECTWISE_SANDBOX_PORT") or 0))
    allow_sandbox_port(app, sandbox.port)
    run_migrations(app)
    with app.app_context():
        seed_users()
        seed_data()
        configure_tenants(sandbox.credentials)
    app.extensions["example_demo_sandbox"] = sandbox
    if not quiet:
        click.echo(banner(sandbox))
    return sandbox


def init_app(app: Flask) -> None:
    """Run the demo when it is on and this process serves requests."""
    if app.config.get("CONNECTWISE_DEMO") and serving_here():
        start(app, quiet=bool(app.config.get("TESTING")))
