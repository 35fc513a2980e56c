"""Change notes name fields by their labels; Flask-Admin deletions are logged when a ticket is given."""

from __future__ import annotations

from typing import Any

import pytest
from flask import get_flashed_messages

from flask_connectwise.changelogging import change_note, field_label
from tests.field_app import make_field_app

TOKEN = "b" * 24


@pytest.fixture
def app(tmp_path, connectwise_sandbox):
    app = make_field_app(f"sqlite:///{tmp_path / 'host.db'}", connectwise_sandbox)
    app.config["WTF_CSRF_ENABLED"] = False
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def body(note: dict[str, Any]) -> str:
    """A note's text without the ``[flask-connectwise ref …]`` line the delivery adds."""
    return note["text"].split("\n\n[flask-connectwise ref")[0]


def device_view(app) -> Any:
    return next(
        v for v in app.extensions["admin"][0]._views if getattr(v, "endpoint", "") == "device"
    )


def add_devices(app, *names: str) -> list[int]:
    with app.app_context():
        db = app.extensions["test_db"]
        devices = [app.extensions["test_device"](name=n, sip_password="pw") for n in names]
        db.session.add_all(devices)
        db.session.commit()
        return [d.id for d in devices]


def exists(app, device_id: int) -> bool:
    with app.app_context():
        db = app.extensions["test_db"]
        return db.session.get(app.extensions["test_device"], device_id) is not None


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("outbound_caller_id", "Outbound caller ID"),
        ("did_number", "DID number"),
        ("sip_password", "SIP password"),
        ("homepage_url", "Homepage URL"),
        ("userUpn", "User UPN"),
        ("pin", "PIN"),
        ("name", "Name"),
        ("destination_extension", "Destination extension"),
    ],
)
def test_field_label_humanises_and_keeps_acronyms(name, label):
    assert field_label(name) == label


def test_change_note_uses_labels_and_still_masks_by_name():
    note = change_note(
        "updated",
        "3CX user ext. 201",
        [("outbound_caller_id", "+1 425 555 0100", "+1 425 555 0199"), ("sip_pin", "1", "2")],
        labels={"outbound_caller_id": "Outbound caller ID", "sip_pin": "Voicemail code"},
    )
    assert note == (
        "Updated 3CX user ext. 201\n"
        '- Outbound caller ID: "+1 425 555 0100" → "+1 425 555 0199"\n'
        "- Voicemail code: changed (hidden)"
    )


def test_admin_edit_note_uses_column_labels_over_flask_admins_automatic_label(
    app, connectwise_sandbox
):
    view = device_view(app)
    original = view.column_labels
    view.column_labels = {"extension": "Extension number"}
    try:
        answer = app.test_client().post(
            "/admin/device/edit/?id=1",
            data={"name": "sip-01", "extension": "207", "connectwise_ticket": "12345"},
        )
    finally:
        view.column_labels = original
    assert answer.status_code == 302
    text = body(connectwise_sandbox.notes(12345)[-1])
    assert text == 'Updated Device #1\n- Extension number: "201" → "207"'


def test_delete_with_a_ticket_logs_one_labelled_note(app, connectwise_sandbox):
    (device_id,) = add_devices(app, "sip-07")
    before = len(connectwise_sandbox.notes(12346))
    answer = app.test_client().post(
        "/admin/device/delete/",
        data={
            "id": str(device_id),
            "connectwise_ticket": "12346",
            "connectwise_ticket__idempotency": TOKEN,
        },
    )
    assert answer.status_code == 302
    notes = connectwise_sandbox.notes(12346)
    assert len(notes) == before + 1
    assert (
        body(notes[-1])
        == f'Deleted Device #{device_id}\n- Name: "sip-07"\n- SIP password: set (hidden)'
    )
    assert 'pw"' not in notes[-1]["text"]
    assert not exists(app, device_id)


def test_delete_without_a_ticket_logs_nothing(app, connectwise_sandbox):
    (device_id,) = add_devices(app, "sip-08")
    before = {t: len(connectwise_sandbox.notes(t)) for t in (12345, 12346)}
    answer = app.test_client().post("/admin/device/delete/", data={"id": str(device_id)})
    assert answer.status_code == 302
    assert not exists(app, device_id)
    assert {t: len(connectwise_sandbox.notes(t)) for t in (12345, 12346)} == before


def test_bulk_delete_with_a_ticket_logs_one_note_per_record(app, connectwise_sandbox):
    ids = add_devices(app, "sip-21", "sip-22")
    before = len(connectwise_sandbox.notes(12346))
    answer = app.test_client().post(
        "/admin/device/action/",
        data={
            "action": "delete",
            "rowid": [str(i) for i in ids],
            "connectwise_ticket": "#12346",
            "connectwise_ticket__idempotency": TOKEN,
        },
    )
    assert answer.status_code == 302
    texts = [body(n) for n in connectwise_sandbox.notes(12346)[before:]]
    assert sorted(texts) == [
        f'Deleted Device #{ids[0]}\n- Name: "sip-21"\n- SIP password: set (hidden)',
        f'Deleted Device #{ids[1]}\n- Name: "sip-22"\n- SIP password: set (hidden)',
    ]
    assert not any(exists(app, i) for i in ids)


def test_bulk_delete_without_a_ticket_logs_nothing(app, connectwise_sandbox):
    ids = add_devices(app, "sip-31")
    before = len(connectwise_sandbox.notes(12346))
    answer = app.test_client().post(
        "/admin/device/action/", data={"action": "delete", "rowid": [str(ids[0])]}
    )
    assert answer.status_code == 302
    assert not exists(app, ids[0])
    assert len(connectwise_sandbox.notes(12346)) == before


def test_delete_with_a_ticket_that_does_not_exist_deletes_nothing_and_says_why(
    app, connectwise_sandbox
):
    (device_id,) = add_devices(app, "sip-41")
    http = app.test_client()
    with http:
        answer = http.post(
            "/admin/device/delete/",
            data={"id": str(device_id), "connectwise_ticket": "99999"},
        )
        assert answer.status_code == 302
        flashed = " ".join(m for _c, m in get_flashed_messages(with_categories=True))
    assert exists(app, device_id)
    assert "Failed to delete record" in flashed and "99999" in flashed
    assert "Traceback" not in flashed
