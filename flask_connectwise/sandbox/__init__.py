"""A ConnectWise Manage-compatible HTTP server for the demo, tests and benchmarks.

    from flask_connectwise.sandbox import Sandbox
    with Sandbox() as sb:
        client = ConnectWiseClient(**sb.credentials)

Or from a shell: ``python -m flask_connectwise.sandbox --port 8765``.

Behaviour GUESSED (not documented in docs/connectwise-api.md; change it when a real server disagrees):

- Auth: a missing or unknown ``clientId`` answers 401 ``Unauthorized`` (like bad keys), not 400/403.
  The company id in auth and in ``login/companyinfo`` is matched case-insensitively; keys exactly.
  Auth is checked before routing, so an unknown route with bad auth is a 401. With
  ``cloud_auth_404`` (``--cloud-auth-404``, ``POST /_sandbox/cloud-auth-404``) every auth failure
  is instead 404 ``NotFound`` "The requested resource was not found.", as cloud servers can answer.
- Wrong codebase: 404 with a ConnectWise error body (checked before auth, as on cloud).
- companyinfo: ``VersionCode`` is the codebase with dots (``v2025.1``), ``SiteUrl`` is host:port.
- Messages of 405/409/415/429/5xx bodies (their shape is confirmed: ``code`` ``ConnectWiseApi``,
  ``errors`` null, CONNECTWISE_API.md §10). Rate-limit numbers.
- Conditions name the published Ticket fields (``schema.json``; ``_info`` keys such as
  ``lastUpdated`` also at the top level); a boolean compared with anything but bare ``true`` /
  ``false`` / ``null`` is 400 "Expected a boolean value, not a numeric value..." (wording beyond
  that prefix is a guess). List parameter names (``pagesize``, ``Conditions``) are case-insensitive.
- Validation errors are 400 ``InvalidObject`` "<resource> object is invalid" with one entry in
  ``errors`` whose ``code`` is the specific one (``MissingRequiredField``, ``MaxLengthField``,
  ``NotFound``, ``InvalidField``); messages such as "The text field is required.".
- Conditions: a syntax error, an unknown field or a type mismatch is 400 ``InvalidObject`` with a
  message starting "Invalid conditions:" (no ``errors`` list). Field names are case-insensitive;
  ``lastUpdated``/``dateEntered`` resolve under ``_info``; ``_`` and ``[..]`` follow SQL Server
  ``LIKE``; comparisons with ``null`` fields are false (SQL semantics); quotes cannot be escaped.
- ``fields``: unknown names are ignored; nested paths return only the asked sub-fields (no
  ``_info``). ``pageSize`` < 1 falls back to 25, > 1000 is clamped to 1000; a non-integer
  ``page``/``pageSize`` is a 400. ``Link`` carries first/prev only after page 1 and next/last only
  before the last page. Default order is ``id`` ascending; nulls sort first.
- Notes: the display-flag error names field ``detailDescriptionFlag``; a ``member`` that does not
  exist is ``errors[0].code == "NotFound"`` on field ``member``; without ``member`` the note is
  by the API member (``SandboxAPI``); ``internalFlag`` = internalAnalysisFlag, ``externalFlag`` =
  detail or resolution. Notes on an unknown ticket: 404 ``Ticket N not found``.
- Time entries: ``timeStart``/``timeEnd`` must end in ``Z`` (naive or offset times are 400);
  one of ``timeEnd`` / ``actualHours`` is required (else MissingRequiredField ``timeEnd``); with
  only ``actualHours`` the server derives ``timeEnd`` (+``hoursDeduct``), with only ``timeEnd`` it
  derives ``actualHours``; an inactive member is rejected; a status with ``timeEntryNotAllowed``
  gives "Time entries are not allowed on tickets with status '<name>'." on field chargeToId;
  ``chargeToType`` is required with ``chargeToId``; ProjectTicket ids never exist here; without
  ``member`` the API member is used.
- PATCH: paths may have a leading ``/`` and any case; supported paths are status (+``/id``,
  ``/name``), summary, owner (+``/id``, ``/identifier``), customerUpdatedFlag; anything else is 400
  ``InvalidField``. Status by name works (active statuses only). Moving to an inactive status is
  400. Leaving a closed status clears closedFlag/closedDate. Ops are all-or-nothing.
- ``system/info`` values, ``x-cw-request-id``/``x-server-name``/``api-current-version`` headers,
  ``_info`` hrefs always use the ``v4_6_release/`` router path.
"""

from .app import RequestLog, RequestRecord
from .faults import KINDS as FAULT_KINDS
from .rules import LENIENT, STRICT, SandboxRules
from .server import Sandbox

__all__ = [
    "FAULT_KINDS",
    "LENIENT",
    "STRICT",
    "RequestLog",
    "RequestRecord",
    "Sandbox",
    "SandboxRules",
]
