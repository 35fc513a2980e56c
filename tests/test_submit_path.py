"""What a host's submit with a ticket costs on the request path (issue 15's submit benchmark,
bench/submit.py): the check before submit and log_change share one read of the tenant's
settings, so the submit reads the credentials row once for them (and once more where the
outbox records the change), never once per step. Counts statements, never times."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from flask_connectwise.current import state
from flask_connectwise.models import CREDENTIALS_TABLE
from flask_connectwise.testing import form_fields, post_form
from tests.field_app import make_field_app
from tests.test_request_checks import settle

TICKET = 12345


@pytest.fixture
def app(tmp_path, connectwise_sandbox) -> Iterator[Any]:
    app = make_field_app(f"sqlite:///{tmp_path / 'host.db'}", connectwise_sandbox)
    yield app
    with app.app_context():
        state(app).dispatcher.close(wait=True)
        app.extensions["test_db"].engine.dispose()


def test_a_submit_reads_the_tenant_settings_once(app, connectwise_sandbox):
    settle(app, connectwise_sandbox)
    client = app.test_client()
    post_form(client, "/voice", {"upn": "warm@example.com"}, ticket=TICKET, field="ticket")
    reads: list[str] = []

    def on_sql(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and CREDENTIALS_TABLE in statement:
            reads.append(statement)

    with app.app_context():
        engine = app.extensions["test_db"].engine
    page = client.get("/voice")
    assert page.status_code == 200
    event.listen(engine, "before_cursor_execute", on_sql)
    try:
        body = form_fields(page.get_data(as_text=True)) | {
            "upn": "sam.ortiz@example.com",
            "ticket": str(TICKET),
        }
        answer = client.post("/voice", data=body)
    finally:
        event.remove(engine, "before_cursor_execute", on_sql)
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]
    # One read for the check before submit and log_change together, one where the outbox
    # records the change (its defaults): before, log_change read the settings again.
    assert len(reads) == 2, reads
