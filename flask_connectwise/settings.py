"""Compatibility: tenants' credentials now live in :mod:`flask_connectwise.credentials` and the
input rules in :mod:`flask_connectwise.validation`. Import from those."""

from __future__ import annotations

from .credentials import MASKED, CredentialsInput, CredentialsStore, TenantSettings, mask
from .validation import InputError, check_ascii, check_text

#: The old names.
MASK = MASKED
SettingsStore = CredentialsStore

__all__ = [
    "MASK",
    "CredentialsInput",
    "CredentialsStore",
    "InputError",
    "SettingsStore",
    "TenantSettings",
    "check_ascii",
    "check_text",
    "mask",
]
