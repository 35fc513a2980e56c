"""The README stays true to the code."""

from __future__ import annotations

from pathlib import Path

from flask_connectwise.config import markdown_table

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_configuration_table_matches_the_defaults():
    assert markdown_table() in README


def test_ci_runs_the_readme_test_command():
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci
    assert "bash scripts/test.sh" in README
