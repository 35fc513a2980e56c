"""The built package (docs/versions.md, "The wheel check"): ``python -m build`` makes the sdist and
the wheel (the wheel built from the sdist), ``twine check`` passes, and the wheel installed into a
fresh virtualenv serves the demo and runs the CLI from a folder outside the repository: static
files, templates, migrations and the sandbox's schema all come from the installed package.

Slow (a build and a virtualenv, about a minute): marked ``packaging``; scripts/test.sh runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tarfile
import time
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


def _run(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, built as a release would be (the wheel from the sdist)."""
    # From a copy without build leftovers: setuptools adds the files an old *.egg-info lists to
    # the sdist, which would hide a file missing from MANIFEST.in.
    source = tmp_path_factory.mktemp("source") / "flask-connectwise"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".git",
            ".nox",
            ".cache",
            "*.egg-info",
            "build",
            "dist",
            "_build",
            "__pycache__",
            "instance",
            ".venv",
            ".mypy_cache",
            ".ruff_cache",
            "node_modules",
            "*.sqlite",
            "*.db",
        ),
    )
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--outdir", out, source, cwd=source)
    return out


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding the wheel with its [example] extra (the demo's needs)."""
    home = tmp_path_factory.mktemp("venv") / "venv"
    venv.EnvBuilder(with_pip=True).create(home)
    (wheel,) = dist.glob("*.whl")
    _run(home / "bin" / "python", "-m", "pip", "install", "-q", f"{wheel}[example]")
    return home


@pytest.fixture(scope="module")
def outside(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder outside the repository with only the sdist's example app and its migrations:
    ``flask_connectwise`` itself can come from nowhere but the virtualenv."""
    (sdist,) = dist.glob("*.tar.gz")
    unpacked = tmp_path_factory.mktemp("sdist")
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    (top,) = unpacked.iterdir()
    here = tmp_path_factory.mktemp("outside")
    for name in ("example_app", "migrations"):
        (top / name).rename(here / name)
    assert not (here / "flask_connectwise").exists()
    return here


def _env(home: Path, tmp: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "FLASK_", "CONNECTWISE_", "VIRTUAL_ENV", "DATABASE_URL"))
    }
    env.update(
        PATH=f"{home / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(home),
        EXAMPLE_INSTANCE_PATH=str(tmp / "instance"),
        DATABASE_URL=f"sqlite:///{tmp / 'app.sqlite'}",
        CONNECTWISE_DEMO="0",
        SECRET_KEY="packaging-test",
    )
    env.update(extra)
    return env


def test_sdist_and_wheel_build_and_pass_twine_check(dist: Path) -> None:
    names = sorted(p.name for p in dist.iterdir())
    assert [n for n in names if n.endswith(".whl")] == ["flask_connectwise-0.1.0-py3-none-any.whl"]
    assert [n for n in names if n.endswith(".tar.gz")] == ["flask_connectwise-0.1.0.tar.gz"]
    result = _run(sys.executable, "-m", "twine", "check", "--strict", *dist.iterdir())
    assert result.stdout.count("PASSED") == 2, result.stdout


def test_the_metadata_names_the_supported_pythons_license_and_placeholder_urls(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read("flask_connectwise-0.1.0.dist-info/METADATA").decode()
    headers = [line for line in metadata.splitlines() if ": " in line and not line.startswith(" ")]
    classifiers = {line.split(": ", 1)[1] for line in headers if line.startswith("Classifier: ")}
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert "Requires-Python: >=3.11" in headers
    assert "License-Expression: MIT" in headers
    assert "flask_connectwise-0.1.0.dist-info/licenses/LICENSE" in names
    assert "Description-Content-Type: text/markdown" in headers
    urls = [line.split(", ", 1)[1] for line in headers if line.startswith("Project-URL: ")]
    assert urls and all(url.startswith("https://example.invalid/") for url in urls), urls
    # The wheel is the package alone; the sdist also carries the demo, the tests and the matrix.
    assert not [n for n in names if n.startswith(("example_app/", "tests/", "migrations/"))]
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for needed in (
        "LICENSE",
        "noxfile.py",
        "tests/constraints-lowest.txt",
        "example_app/demo.py",
        "migrations/env.py",
        "flask_connectwise/sandbox/schema.json",
    ):
        assert needed in members, needed


def test_the_installed_package_has_its_data_files(installed: Path, outside: Path) -> None:
    probe = r"""
import json, sys
from importlib import resources
import flask_connectwise
from flask_connectwise.sandbox import schema
pkg = resources.files("flask_connectwise")
print(json.dumps({
    "file": flask_connectwise.__file__,
    "migrations": sorted(p.name for p in pkg.joinpath("migrations", "versions").iterdir()
                         if p.name.endswith(".py")),
    "static": sorted(p.name for p in pkg.joinpath("static", "connectwise").iterdir()),
    "templates": pkg.joinpath("templates", "connectwise", "my_changes.html").is_file(),
    "admin_templates": len(list(pkg.joinpath("templates", "connectwise", "admin").iterdir())),
    "schema_models": len(schema.models()),
    "typed": pkg.joinpath("py.typed").is_file(),
}))
"""
    result = _run(installed / "bin" / "python", "-c", probe, cwd=outside)
    found = json.loads(result.stdout)
    assert found["file"].startswith(str(installed)), found["file"]
    assert {"cw0001_connectwise_initial_tables.py", "cw0003_change_log_ticket_verified.py"} <= set(
        found["migrations"]
    )
    assert found["static"] == ["ticket-search.css", "ticket-search.js"]
    assert found["templates"] and found["admin_templates"] >= 10
    assert found["schema_models"] > 10
    assert found["typed"]


def test_the_cli_runs_from_the_installed_package(
    installed: Path, outside: Path, tmp_path: Path
) -> None:
    flask = installed / "bin" / "flask"
    env = _env(installed, tmp_path)
    helped = _run(flask, "--app", "example_app", "connectwise", "--help", cwd=outside, env=env)
    for command in ("keys", "deliver", "outbox"):
        assert command in helped.stdout
    generated = _run(
        flask, "--app", "example_app", "connectwise", "keys", "generate", cwd=outside, env=env
    )
    key = generated.stdout.strip()
    assert key and "\n" not in key and ":" in key, generated.stdout
    assert "Traceback" not in generated.stderr

    # The extension's migrations, found in the installed package, on a temporary SQLite.
    _run(flask, "--app", "example_app", "db", "upgrade", "heads", cwd=outside, env=env)
    with sqlite3.connect(tmp_path / "app.sqlite") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        columns = {row[1] for row in conn.execute("PRAGMA table_info(connectwise_change_log)")}
    assert {"connectwise_credentials", "connectwise_change_log"} <= tables, tables
    assert "ticket_verified" in columns, columns  # the newest revision (cw0003) ran

    sandbox = _run(
        installed / "bin" / "python",
        "-m",
        "flask_connectwise.sandbox",
        "--help",
        cwd=outside,
        env=env,
    )
    assert "usage" in sandbox.stdout.lower()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@pytest.fixture
def demo(installed: Path, outside: Path, tmp_path: Path) -> Iterator[str]:
    """The example app in demo mode, served by the virtualenv's ``flask run`` on loopback."""
    port = _free_port()
    log = (tmp_path / "demo.log").open("w")
    process = subprocess.Popen(
        [
            str(installed / "bin" / "flask"),
            "--app",
            "example_app",
            "run",
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--no-reload",
            "--no-debugger",
        ],
        cwd=outside,
        env=_env(installed, tmp_path, CONNECTWISE_DEMO="1"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://{LOOPBACK}:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (tmp_path / "demo.log").read_text()
            try:
                requests.get(f"{base}/login", timeout=2)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, (tmp_path / "demo.log").read_text()
                time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_the_demo_serves_pages_static_files_and_templates_from_the_wheel(demo: str) -> None:
    http = requests.Session()
    login = http.get(f"{demo}/login", timeout=10)
    assert login.status_code == 200 and 'name="password"' in login.text

    script = http.get(f"{demo}/connectwise-static/connectwise/ticket-search.js", timeout=10)
    assert script.status_code == 200
    assert (
        script.content
        == (ROOT / "flask_connectwise/static/connectwise/ticket-search.js").read_bytes()
    )

    answer = http.post(
        f"{demo}/login", json={"email": "admin@contoso.example", "password": "demo"}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    mine = http.get(f"{demo}/api/admin/tenant/contoso/connectwise/changes/mine/page", timeout=10)
    assert mine.status_code == 200 and "<h1>My recent ConnectWise logs</h1>" in mine.text
    log_page = http.get(f"{demo}/admin/connectwise/change-log/", timeout=10)
    assert log_page.status_code == 200 and "ticket-search" not in log_page.url
    assert "Traceback" not in log_page.text
