"""The ticket field's script and style sheet: content-hashed URLs cached for a year, and in
debug an edited file is visible on the next page view."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from flask_connectwise import fields
from flask_connectwise.fields import IMMUTABLE, SCRIPT_FILE, STYLE_FILE, TicketSearchField
from tests.field_app import make_field_app, serve
from tests.serving import chromium

STATIC = Path(fields.__file__).parent / "static"


@pytest.fixture
def app(tmp_path, connectwise_sandbox) -> Iterator[Flask]:
    app = make_field_app(f"sqlite:///{tmp_path / 'host.db'}", connectwise_sandbox, admin=False)
    app.config["WTF_CSRF_ENABLED"] = False
    yield app
    with app.app_context():
        app.extensions["test_db"].engine.dispose()


def asset_urls(app: Flask) -> dict[str, str]:
    """``{"js": url, "css": url}`` as the widget renders them."""
    from flask_wtf import FlaskForm

    form_class = type("F", (FlaskForm,), {"ticket": TicketSearchField()})
    with app.test_request_context("/"):
        html = str(form_class(formdata=None).ticket())
    js = re.search(r'<script [^>]*src="([^"]+)"', html)
    css = re.search(r'<link [^>]*href="([^"]+)"', html)
    assert js and css, html
    return {"js": js[1].replace("&amp;", "&"), "css": css[1].replace("&amp;", "&")}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def test_asset_urls_carry_the_files_content_hash(app):
    urls = asset_urls(app)
    assert urls["js"] == f"/connectwise-static/{SCRIPT_FILE}?v={sha(STATIC / SCRIPT_FILE)}"
    assert urls["css"] == f"/connectwise-static/{STYLE_FILE}?v={sha(STATIC / STYLE_FILE)}"


def test_a_hashed_url_is_cached_for_a_year_and_never_revalidated(app):
    http = app.test_client()
    for url in asset_urls(app).values():
        answer = http.get(url)
        assert answer.status_code == 200
        assert answer.headers["Cache-Control"] == IMMUTABLE
        assert "Expires" not in answer.headers


@pytest.mark.parametrize("query", ["", "?v=0123456789abcdef", "?v=", "?v=%00%27"])
def test_without_the_current_hash_the_file_is_revalidated_each_time(app, query):
    # An old URL must not pin the new file for a year (nor a guessed one the old file).
    answer = app.test_client().get(f"/connectwise-static/{SCRIPT_FILE}{query}")
    assert answer.status_code == 200 and b"AbortController" in answer.data
    assert answer.headers["Cache-Control"] == "no-cache"


def test_a_missing_asset_is_still_a_404(app):
    answer = app.test_client().get("/connectwise-static/connectwise/nothing.js?v=abc")
    assert answer.status_code == 404


@pytest.fixture
def edited_static(tmp_path, monkeypatch) -> Path:
    """A copy of the package's static folder, served and hashed instead of the package's."""
    copy = tmp_path / "static"
    shutil.copytree(STATIC, copy)
    monkeypatch.setattr(fields, "_STATIC_DIR", copy)
    monkeypatch.setattr(fields.connectwise_static, "static_folder", str(copy))
    return copy


def test_in_debug_an_edited_asset_gets_a_new_url_at_once_and_is_never_cached(app, edited_static):
    app.debug = True
    http = app.test_client()
    before = asset_urls(app)
    served = http.get(before["js"])
    assert served.headers["Cache-Control"] == "no-cache"

    script = edited_static / SCRIPT_FILE
    script.write_text(script.read_text() + "\n/* edited */\n")
    after = asset_urls(app)
    assert after["js"] != before["js"] and after["css"] == before["css"]
    assert after["js"].endswith(f"?v={sha(script)}")
    served = http.get(after["js"])
    assert served.data.endswith(b"/* edited */\n")
    assert served.headers["Cache-Control"] == "no-cache"


def test_outside_debug_an_edited_asset_also_gets_a_new_url(app, edited_static):
    before = asset_urls(app)["css"]
    style = edited_static / STYLE_FILE
    style.write_text(style.read_text() + "\n.x{}\n")
    after = asset_urls(app)["css"]
    assert after != before
    http = app.test_client()
    assert http.get(after).headers["Cache-Control"] == IMMUTABLE
    # The old URL now names content that is gone: it is served revalidated, never immutable.
    assert http.get(before).headers["Cache-Control"] == "no-cache"


# -- in a browser ---------------------------------------------------------------------------


@pytest.mark.browser
def test_a_second_page_view_requests_none_of_the_fields_assets(tmp_path, connectwise_sandbox):
    pytest.importorskip("playwright.sync_api")
    app = make_field_app(f"sqlite:///{tmp_path / 'host.db'}", connectwise_sandbox, admin=False)
    seen: list[str] = []

    @app.after_request
    def record(response: Any) -> Any:
        from flask import request

        seen.append(f"{request.path} {response.status_code}")
        return response

    try:
        with serve(app) as url, chromium() as browser:
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"{url}/voice")
            page.wait_for_load_state("load")
            page.wait_for_selector("[data-cw-ready]", state="attached")  # the script ran
            first = [s for s in seen if "/connectwise-static/" in s]
            assert sorted(first) == sorted(
                [f"/connectwise-static/{SCRIPT_FILE} 200", f"/connectwise-static/{STYLE_FILE} 200"]
            )
            seen.clear()
            page.goto(f"{url}/voice")
            page.wait_for_load_state("load")
            page.wait_for_selector("[data-cw-ready]", state="attached")  # from the cache
            assert any(s.startswith("/voice ") for s in seen)
            assert [s for s in seen if "/connectwise-static/" in s] == []
            context.close()
    finally:
        with app.app_context():
            app.extensions["test_db"].engine.dispose()
