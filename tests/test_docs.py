"""The docs build without a warning and stay true to the code; the README stays a landing page
that points at them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from flask_connectwise.config import markdown_table

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()


def page(name: str) -> str:
    return (DOCS / f"{name}.md").read_text()


def test_the_docs_build_with_warnings_as_errors(tmp_path):
    """The same build as the test command's, into a temp dir: a broken page, a bad cross
    reference or a docstring with bad reST fails the suite."""
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    assert (tmp_path / "html" / "api.html").is_file()
    assert "flask_connectwise.ConnectWise.init_app" in (tmp_path / "html" / "api.html").read_text()


def test_every_page_is_in_the_toctree():
    index = page("index")
    for md in DOCS.glob("*.md"):
        if md.stem not in ("index", "connectwise-api"):  # the latter: research, not published
            assert f"\n{md.stem}\n" in index, md.name


def test_configuration_table_matches_the_defaults():
    assert markdown_table() in page("configuration")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci
    assert "bash scripts/test.sh" in README


def test_the_test_command_builds_the_docs_with_warnings_as_errors():
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert "python3 -m sphinx -W --keep-going -q -b html docs docs/_build/html" in script


def test_the_readme_is_a_landing_page_with_the_demo_first():
    demo = "python3 -m pip install -e '.[example]' && flask --app example_app run"
    assert demo in README
    assert README.index(demo) < README.index("bash scripts/test.sh")
    run_the_tests = README[README.index("## Run the tests") :].split("\n## ")[0]
    assert "bash scripts/test.sh" in run_the_tests
    assert "apt-get" in run_the_tests and "root" in run_the_tests
    assert "bash scripts/test.sh" not in README[: README.index("## Run the tests")]
    assert "| key | default | meaning |" not in README  # the reference lives in the docs


def test_the_readme_links_to_pages_that_exist():
    import re

    links = re.findall(r"\]\((docs/[^)#]+)", README)
    assert "docs/quickstart.md" in links and "docs/api.md" in links
    for link in links:
        assert (ROOT / link).is_file(), link


def test_the_sandbox_page_lists_every_tenant_rule_with_its_profile_values():
    from flask_connectwise.sandbox.rules import LENIENT, RULE_NAMES, STRICT

    def shown(value: object) -> str:
        return {True: "on", False: "off", None: "none"}.get(value, f"`{value}`")  # type: ignore[arg-type]

    page = (DOCS / "sandbox.md").read_text()
    rows = {
        line.split("|")[1].strip(" `"): [cell.strip() for cell in line.split("|")[2:4]]
        for line in page.splitlines()
        if line.startswith("| `") and line.split("|")[1].strip(" `") in RULE_NAMES
    }
    assert sorted(rows) == sorted(RULE_NAMES)
    for name in RULE_NAMES:
        expected = [shown(getattr(LENIENT, name)), shown(getattr(STRICT, name))]
        assert rows[name] == expected, name


def test_the_readme_names_the_msp_settings_with_their_defaults():
    from flask_connectwise.config import SETTINGS

    defaults = {s.key: s.default for s in SETTINGS}
    section = README.split("## Settings for an MSP")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| `CONNECTWISE_")]
    named = 0
    for row in rows:
        keys = [k.strip(" `") for k in row.split("|")[1].split(",")]
        shown = [d.strip(" `") for d in row.split("|")[2].split(",")]
        for key, default in zip(keys, shown, strict=True):
            assert key in defaults, key
            assert default == str(defaults[key]), (key, default)
            named += 1
    assert named == 9
