"""Names integrators may already import keep working after the redesign's renames."""

from __future__ import annotations

import builtins

from flask import Flask

import flask_connectwise
from flask_connectwise import (
    api,
    credentials,
    csrf,
    errors,
    http_errors,
    routes,
    settings,
    validation,
)
from flask_connectwise.extension import ConnectWise, state
from flask_connectwise.models import DELIVERED
from flask_connectwise.sandbox import Sandbox
from flask_connectwise.service import ConnectWiseService
from tests.outbox_helpers import TICKET, copies_on_sandbox


def test_the_client_errors_have_names_that_shadow_nothing() -> None:
    assert flask_connectwise.ConnectWiseTimeoutError is errors.ConnectWiseTimeoutError
    assert flask_connectwise.ConnectWiseValidationError is errors.ConnectWiseValidationError
    assert errors.ConnectWiseTimeoutError is not builtins.TimeoutError
    # the old names are the same classes
    assert flask_connectwise.TimeoutError is errors.TimeoutError is errors.ConnectWiseTimeoutError
    assert flask_connectwise.ValidationError is errors.ConnectWiseValidationError
    assert issubclass(errors.StatusNotOnBoardError, flask_connectwise.ValidationError)


def test_settings_is_credentials_under_its_old_name() -> None:
    assert settings.SettingsStore is credentials.CredentialsStore
    assert settings.CredentialsInput is credentials.CredentialsInput
    assert settings.TenantSettings is credentials.TenantSettings
    assert settings.InputError is validation.InputError
    assert settings.check_text is validation.check_text
    assert settings.check_ascii is validation.check_ascii
    assert settings.MASK == credentials.MASKED == "••••"
    assert credentials.mask("abcdefgh") == "••••efgh"


def test_api_re_exports_the_routes() -> None:
    assert api.csrf_token is csrf.csrf_token is flask_connectwise.csrf_token
    assert api.ApiError is http_errors.ApiError
    assert api.InputError is validation.InputError
    assert api.TENANT_RE is validation.TENANT_ID_RE
    assert api.create_blueprint("/x/<tenant_id>/cw") is routes.blueprint


def test_the_service_facade_still_delegates_to_the_three_services(
    app: Flask, cw: ConnectWise, configured_tenant: str, connectwise_sandbox: Sandbox
) -> None:
    """``ConnectWiseService`` (``cw.service``, ``state(app).service``) stays for integrators."""
    with app.app_context():
        service = cw.service
        assert isinstance(service, ConnectWiseService)
        assert service is state(app).service
        assert service.tenants is cw.tenants
        assert service.search is cw.search
        assert service.outbox is cw.outbox
        assert service.is_enabled(configured_tenant)
        assert service.credentials_row(configured_tenant) is cw.tenants.credentials_row(
            configured_tenant
        )
        service.set_flag(configured_tenant, False)
        assert not cw.tenants.is_enabled(configured_tenant)
        service.set_flag(configured_tenant, True)
        row, _ = service.record_change(
            configured_tenant, TICKET, "through the facade", hours=0.25, member="jdoe"
        )
        service.session.commit()
        outcome = service.deliver(row)
        assert outcome["state"] == DELIVERED
        assert cw.outbox.find(row.id) is row
    assert copies_on_sandbox(connectwise_sandbox, row.reference) == (1, 1)
