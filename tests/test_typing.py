"""An integrator's type checker sees the public API's real types: ``tests/typed_host.py`` passes
``mypy --strict`` with no expression of type ``Any`` in it (``disallow_any_expr`` for that module
only), so nothing leaks ``Any`` from ``ConnectWise``, ``TicketSearchField``, the records or the
model rows."""

from __future__ import annotations

from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parent.parent
HOST = "tests/typed_host.py"

CONFIG = """\
[mypy]
strict = True
ignore_missing_imports = True
cache_dir = {cache}

[mypy-tests.typed_host,leaky_host]
disallow_any_expr = True
"""


def run_mypy(tmp_path: Path, *files: str) -> tuple[str, int]:
    config = tmp_path / "mypy.ini"
    config.write_text(CONFIG.format(cache=tmp_path / "cache"))
    stdout, stderr, status = mypy_api.run(["--config-file", str(config), *files])
    return stdout + stderr, status


def test_the_typed_host_passes_strict_mypy_without_any(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    report, status = run_mypy(tmp_path, HOST)
    assert status == 0, report


def test_the_check_catches_an_any_leak(tmp_path, monkeypatch):
    """The control: the same check fails on a host that lets ``Any`` in."""
    monkeypatch.chdir(ROOT)
    leaky = tmp_path / "leaky_host.py"
    leaky.write_text(
        "import json\n\n\n"
        "def leak(text: str) -> bool:\n"
        "    value = json.loads(text)\n"
        "    return value is None\n"
    )
    report, status = run_mypy(tmp_path, str(leaky))
    assert status == 1 and 'Expression has type "Any"' in report, report


def test_reveal_type_shows_the_public_classes(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from flask_connectwise import ConnectWise, Ticket, TicketSearchField\n"
        "from flask_connectwise.models import ChangeLogRow, define_models\n"
        "from flask_sqlalchemy import SQLAlchemy\n\n"
        "reveal_type(ConnectWise().search_tickets)\n"
        "reveal_type(TicketSearchField('t').log_change)\n"
        "reveal_type(Ticket(id=1, summary='s').company)\n"
        "reveal_type(define_models(SQLAlchemy()).ChangeLog)\n"
    )
    report, _status = run_mypy(tmp_path, str(probe))
    assert "list[flask_connectwise.records.Ticket]" in report, report
    assert "flask_connectwise.models.ChangeLogRow | None" in report, report
    assert 'Revealed type is "str | None"' in report, report
    assert 'Revealed type is "type[flask_connectwise.models.ChangeLogRow]"' in report, report
    assert "Any" not in report, report
