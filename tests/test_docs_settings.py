"""The docs' tenant-settings example (issue 14, docs/tenant-settings.md) is accepted as written
and reads back as the page says: every choice kept, no warning left."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.json_api import configure

PAGE = (Path(__file__).resolve().parent.parent / "docs" / "tenant-settings.md").read_text()


def settings_example() -> dict[str, object]:
    section = PAGE[PAGE.index("# A tenant's ConnectWise settings") :]
    match = re.search(r"-d '(\{.*?\})'", section, re.S)
    assert match is not None, "the settings section lost its curl example"
    body: dict[str, object] = json.loads(match.group(1))
    return body


def test_the_docs_settings_example_round_trips(app, connectwise_sandbox):
    body = settings_example()
    api = configure(app, connectwise_sandbox)
    creds = connectwise_sandbox.credentials
    body |= {"baseUrl": creds["base_url"], "companyId": creds["company_id"]}  # the sandbox's port
    answer = api.call("POST", "/credentials", body)
    assert answer.status_code == 200, answer.get_json()
    shown = api.call("GET", "/credentials").get_json()
    for key, value in body.items():
        if key not in ("baseUrl", "companyId"):
            assert shown[key] == value, key
    assert shown["warnings"] == []
