"""The routes' structure: every view declares what it requires, and the API and the admin
agree on which tenant ids exist."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from flask_connectwise.routes import BLUEPRINT_NAME, requirement_of, requires
from flask_connectwise.validation import InputError, check_tenant_id, is_tenant_id
from tests.admin_helpers import AdminUser, make_admin_app, text_of
from tests.hosts import cw_of

PREFIX = "/api/admin/tenant/{tenant}/connectwise"
CREDENTIALS_ADMIN = "/admin/connectwise/credentials"


@pytest.fixture
def app(database_url: str) -> Any:
    return make_admin_app(database_url)


def _views(app: Any) -> dict[str, Any]:
    prefix = f"{BLUEPRINT_NAME}."
    return {
        rule.endpoint: app.view_functions[rule.endpoint]
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith(prefix)
    }


def test_every_view_declares_the_action_it_requires(app: Any) -> None:
    views = _views(app)
    # The HTTP contract's nine routes, and "my recent ConnectWise logs" (JSON and page).
    assert len(views) == 11
    assert {f"{BLUEPRINT_NAME}.changes_mine", f"{BLUEPRINT_NAME}.changes_mine_page"} <= set(views)
    undeclared = sorted(name for name, view in views.items() if requirement_of(view) is None)
    assert undeclared == [], f"add @requires('use' | 'configure') to {undeclared}"
    configure = sorted(n for n, v in views.items() if requirement_of(v).action == "configure")  # type: ignore[union-attr]
    assert configure == [f"{BLUEPRINT_NAME}.credentials_get", f"{BLUEPRINT_NAME}.credentials_post"]
    flag_free = sorted(n for n, v in views.items() if not requirement_of(v).feature_flag)  # type: ignore[union-attr]
    assert flag_free == [f"{BLUEPRINT_NAME}.enabled"]


def test_a_view_without_requires_is_refused(app: Any) -> None:
    """Fail closed: a view without ``@requires`` answers 403 and never runs."""
    ran: list[bool] = []

    def undeclared() -> str:  # pragma: no cover - must not run
        ran.append(True)
        return "ran"

    app.view_functions[f"{BLUEPRINT_NAME}.enabled"] = undeclared
    answer = app.test_client().get(
        PREFIX.format(tenant="contoso") + "/enabled",
        headers={"X-User-Tenant": "contoso", "X-User-Role": "superadmin"},
    )
    assert answer.status_code == 403 and answer.get_json()["error"] == "forbidden"
    assert ran == []


def test_requires_knows_only_use_and_configure() -> None:
    with pytest.raises(ValueError):
        requires("admin")  # type: ignore[arg-type]


TENANT_IDS = [
    ("contoso", True),
    ("tenant-1", True),
    ("a.b:c_d", True),
    ("x" * 64, True),
    ("*", False),
    ("x" * 65, False),
    ("a b", False),
    ("münchen", False),
    ("١٢", False),
    ('"><svg onload=alert(1)>', False),
    ("ab\nc", False),
    ("a%b", False),
]


@pytest.mark.parametrize(("tenant", "valid"), [*TENANT_IDS, ("abc\n", False), ("", False)])
def test_the_tenant_id_rule(tenant: str, valid: bool) -> None:
    assert is_tenant_id(tenant) is valid
    if valid:
        assert check_tenant_id(tenant) == tenant
    else:
        with pytest.raises(InputError):
            check_tenant_id(tenant)


def _api_addresses(app: Any, tenant: str) -> bool:
    """Whether the JSON routes know ``tenant`` (a superadmin asks whether it is enabled)."""
    answer = app.test_client().get(
        PREFIX.format(tenant=quote(tenant, safe="")) + "/enabled",
        headers={"X-User-Tenant": "contoso", "X-User-Role": "superadmin"},
    )
    assert answer.status_code in (200, 404), answer.get_data(as_text=True)
    return answer.status_code == 200


def _admin_stores(app: Any, sandbox: Any, tenant: str) -> bool:
    """Whether a superadmin can store credentials for ``tenant`` in the admin."""
    user = AdminUser(app, "contoso", role="superadmin")
    creds = sandbox.credentials
    answer = user.post(
        f"{CREDENTIALS_ADMIN}/new/",
        {
            "tenant_id": tenant,
            "base_url": creds["base_url"],
            "company_id": creds["company_id"],
            "public_key": creds["public_key"],
            "private_key": creds["private_key"],
            "client_id": creds["client_id"],
            "default_time_minutes": "15",
            "default_status_id": "",
        },
    )
    assert answer.status_code in (200, 302), text_of(answer.get_data(as_text=True))
    with app.app_context():
        stored = cw_of(app).tenants.credentials_row(tenant) is not None
    assert stored == (answer.status_code == 302)
    return stored


@pytest.mark.parametrize(("tenant", "valid"), TENANT_IDS)
def test_the_admin_and_the_api_refuse_the_same_tenant_ids(
    app: Any, connectwise_sandbox: Any, tenant: str, valid: bool
) -> None:
    assert _api_addresses(app, tenant) is valid
    assert _admin_stores(app, connectwise_sandbox, tenant) is valid
