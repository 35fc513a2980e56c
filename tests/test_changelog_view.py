"""The change-log admin view (issue 14): a skipped step's reason is neutral information
("Skipped: status left as is: …"), a failure stays red."""

from __future__ import annotations

import re
from typing import Any

import pytest

from flask_connectwise.models import DELIVERED, FAILED, GAVE_UP, SKIPPED
from tests.admin_helpers import TENANT_A, AdminUser, make_admin_app, seed_change, text_of

CHANGES = "/admin/connectwise/change-log"
STATUS_REASON = "status left as is: no status set for board Voice Services"
TIME_REASON = "no time entry: ticket #12346 is closed"
REFUSAL = "Ticket #12460 belongs to Woodgrove Bank, not Contoso Ltd"


@pytest.fixture
def app(tmp_path):
    app = make_admin_app(f"sqlite:///{tmp_path / 'admin.db'}")
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def make_change(app: Any, **columns: Any) -> int:
    return seed_change(app, **columns)


def small_tags(html: str) -> list[tuple[str, str]]:
    """``(class, text)`` of each ``<small>`` note in the page."""
    return [
        (cls, text_of(body))
        for cls, body in re.findall(r'<small class="([^"]*)">(.*?)</small>', html, re.S)
    ]


def skipped_change(app: Any) -> int:
    return make_change(
        app,
        state=DELIVERED,
        note_state="confirmed",
        note_remote_id=901,
        time_state=SKIPPED,
        time_error=TIME_REASON,
        status_state=SKIPPED,
        status_error=STATUS_REASON,
    )


@pytest.mark.parametrize("page", ["list", "details"])
def test_a_skipped_reason_is_neutral_information(app, page):
    change_id = skipped_change(app)
    user = AdminUser(app, TENANT_A)
    url = f"{CHANGES}/" if page == "list" else f"{CHANGES}/details/?id={change_id}"
    html = user.get(url).get_data(as_text=True)
    notes = small_tags(html)
    assert ("text-muted cw-skipped", f"Skipped: {STATUS_REASON}") in notes, notes
    assert ("text-muted cw-skipped", f"Skipped: {TIME_REASON}") in notes, notes
    assert not [text for cls, text in notes if "text-danger" in cls], notes
    if page == "details":
        # The Errors row lists failures only: a skipped step is not an error.
        errors = re.search(r"<b>Errors</b>\s*</td>\s*<td>(.*?)</td>", html, re.S)
        assert errors is not None and text_of(errors.group(1)) == ""


def test_a_failure_stays_red_next_to_a_skipped_reason(app):
    change_id = make_change(
        app,
        state=GAVE_UP,
        note_state=FAILED,
        note_attempts=1,
        note_error=REFUSAL,
        time_state=SKIPPED,
        time_error=TIME_REASON,
    )
    user = AdminUser(app, TENANT_A)
    html = user.get(f"{CHANGES}/details/?id={change_id}").get_data(as_text=True)
    notes = small_tags(html)
    assert ("text-danger", REFUSAL) in notes, notes
    assert ("text-muted cw-skipped", f"Skipped: {TIME_REASON}") in notes, notes
    assert "Skipped: " + REFUSAL not in text_of(html)
    errors = re.search(r"<b>Errors</b>\s*</td>\s*<td>(.*?)</td>", html, re.S)
    assert errors is not None and text_of(errors.group(1)) == f"Note: {REFUSAL}"


def test_a_hostile_skipped_reason_is_escaped(app):
    make_change(app, state=DELIVERED, status_state=SKIPPED, status_error="<script>x()</script>")
    html = AdminUser(app, TENANT_A).get(f"{CHANGES}/").get_data(as_text=True)
    assert "<script>x()</script>" not in html
    assert "Skipped: &lt;script&gt;x()&lt;/script&gt;" in html
