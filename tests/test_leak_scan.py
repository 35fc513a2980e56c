"""The leak scan itself: it must catch a canary in a log record or an HTTP answer."""

from __future__ import annotations

import logging

from flask import Flask

from tests.leaks import LeakCatcher


def test_catcher_sees_messages_extras_and_exceptions(canaries):
    catcher = LeakCatcher()
    log = logging.getLogger("leak-scan-self-test")
    log.addHandler(catcher)
    log.propagate = False
    try:
        log.warning("plain %s", "text")
        log.warning("args %s", canaries.private_key)
        log.warning("extra", extra={"cw_header": canaries.client_id})
        try:
            raise ValueError(canaries.public_key)
        except ValueError:
            log.exception("boom")
    finally:
        log.removeHandler(catcher)
    found = [c for text in catcher.texts for c in canaries.find_in(text)]
    assert set(found) == set(canaries.all())


def test_startup_warns_when_keys_are_missing(caplog, tmp_path):
    from flask_sqlalchemy import SQLAlchemy

    from flask_connectwise import ConnectWise

    app = Flask("no-keys")
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'x.db'}"
    with caplog.at_level(logging.WARNING, logger="flask_connectwise"):
        ConnectWise(app, db=SQLAlchemy(app))
        app.test_client().get("/")  # the warning comes with the first request (issue 16)
    assert any("CONNECTWISE_ENCRYPTION_KEYS" in r.getMessage() for r in caplog.records)
