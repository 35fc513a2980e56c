"""Logging in and out, the CSRF token route, and the ConnectWise hooks that follow the user.

``POST /login`` takes a form (the login page, CSRF-protected) or JSON (``{"email",
"password"}``, for curl and scripts: a cross-site page cannot send JSON without CORS, which
this app does not allow). ``GET /csrf-token`` answers the token that state-changing JSON
requests carry in the ``X-CSRFToken`` header, as text (or JSON when asked for).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError, generate_csrf
from werkzeug.exceptions import HTTPException
from werkzeug.security import generate_password_hash
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import DataRequired, Length

from .extensions import csrf, cw, db, login_manager
from .models import Tenant, User

bp = Blueprint("auth", __name__)

#: Checked when the e-mail is unknown, so both failures take the same time.
_DUMMY_HASH = generate_password_hash("not-a-password")


class LoginForm(FlaskForm):
    """The login page's form."""

    email = StringField("E-mail", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    remember = BooleanField("Keep me signed in")


def authenticate(email: str, password: str) -> User | None:
    """The user with this e-mail and password, or ``None``."""
    user = db.session.execute(
        db.select(User).filter_by(email=email.strip().lower())
    ).scalar_one_or_none()
    if user is None:
        User(password_hash=_DUMMY_HASH).check_password(password)
        return None
    return user if user.check_password(password) else None


def user_json(user: User) -> dict[str, Any]:
    """What ``POST /login`` answers about the user (never the hash)."""
    return {
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "tenant": user.tenant_id,
        "memberIdentifier": user.cw_member,
    }


def safe_next(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else ``None`` (no open redirect)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/login", methods=["GET", "POST"])
@csrf.exempt  # JSON logins are exempt (see the module docstring); forms are checked below
def login() -> Any:
    """The login page; ``POST`` with a form or with JSON."""
    if request.method == "POST" and request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return jsonify(error="invalid_json", message="Send {email, password} as JSON"), 400
        email, password = data.get("email"), data.get("password")
        if not isinstance(email, str) or not isinstance(password, str):
            return jsonify(error="validation_error", message="email and password are required"), 400
        user = authenticate(email, password)
        if user is None:
            return jsonify(error="invalid_credentials", message="Wrong e-mail or password"), 401
        login_user(user)
        return jsonify(user_json(user) | {"csrfToken": generate_csrf()})

    form = LoginForm()
    if request.method == "POST":
        csrf.protect()  # the page's form must carry its token
    if form.validate_on_submit():
        user = authenticate(form.email.data or "", form.password.data or "")
        if user is not None:
            login_user(user, remember=bool(form.remember.data))
            return redirect(safe_next(request.args.get("next")) or url_for("admin.index"))
        flash("Wrong e-mail or password.", "error")
    elif current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("admin.index"))
    status = 401 if request.method == "POST" else 200
    return render_template("example/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout() -> Response:
    """Log out (a POST with the CSRF token, or JSON with ``X-CSRFToken``)."""
    logout_user()
    if request.is_json or request.accept_mimetypes.best == "application/json":
        return jsonify(ok=True)
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.get("/csrf-token")
def csrf_token() -> Response:
    """The CSRF token of this session: text, or ``{"csrfToken": ...}`` for JSON clients."""
    token = generate_csrf()
    best = request.accept_mimetypes.best_match(["text/plain", "application/json"])
    if best == "application/json" and "application/json" in request.accept_mimetypes.values():
        return jsonify(csrfToken=token)
    return Response(token, mimetype="text/plain")


@bp.get("/")
def home() -> Response:
    """Send people to the dashboard (or the login page)."""
    return redirect(url_for("admin.index"))


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    try:
        return db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        return None


@login_manager.unauthorized_handler
def unauthorized() -> Any:
    if request.is_json or request.accept_mimetypes.best == "application/json":
        return jsonify(error="unauthorized", message="Log in first: POST /login"), 401
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def current_tenant_id() -> str | None:
    """The logged-in user's tenant, or ``None``."""
    return current_user.tenant_id if current_user.is_authenticated else None


def init_app(app: Flask) -> None:
    """Register the routes and the ConnectWise hooks."""
    login_manager.login_view = "auth.login"
    login_manager.login_message_category = "info"
    app.register_blueprint(bp)

    @app.errorhandler(CSRFError)
    def csrf_failed(exc: CSRFError) -> Any:
        """JSON clients get the extension's error shape (403 ``csrf_failed``)."""
        if request.is_json or request.path.startswith("/api/"):
            return jsonify(error="csrf_failed", message=exc.description), 403
        return render_template("example/error.html", message=exc.description), 400

    @app.errorhandler(403)
    def forbidden(exc: HTTPException) -> Any:
        """A page the user's role may not open (an operator on Credentials, say): the app's
        own page in words, not the bare "Forbidden"; JSON clients keep the plain answer."""
        if request.is_json or request.path.startswith("/api/"):
            return exc.get_response()
        return render_template(
            "example/error.html",
            heading="Not open to your account",
            message="Your account may not open this page.",
            advice="Ask an administrator of your organisation if you need it.",
        ), 403

    @cw.authorize
    def may(tenant_id: str, action: str) -> bool:
        return bool(current_user.is_authenticated and current_user.may(tenant_id, action))

    @cw.current_tenant
    def tenant() -> str | None:
        return current_tenant_id()

    @cw.tenant_name
    def tenant_name(tenant_id: str) -> str | None:
        tenant = db.session.get(Tenant, tenant_id)
        return tenant.name if tenant is not None else None

    @cw.current_member
    def member() -> str | None:
        return current_user.cw_member if current_user.is_authenticated else None
