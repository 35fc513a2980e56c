"""The supported-versions matrix (docs/versions.md): ``nox`` runs every session, ``nox -s lowest``
one of them, ``nox -s tests-3.12 -- -k outbox -x`` passes pytest arguments.

Every session runs the non-browser suite (the browser tests run once, in scripts/test.sh)
against PostgreSQL and Redis on loopback: ``source scripts/services.sh && start_services`` starts
them and exports CONNECTWISE_TEST_POSTGRES_URL and CONNECTWISE_TEST_REDIS_URL (without them the
tests that need them skip).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PYTHONS = ["3.11", "3.12", "3.13"]
LOWEST = str(ROOT / "tests" / "constraints-lowest.txt")


nox.options.sessions = [*(f"tests-{v}" for v in PYTHONS), "lowest", "flask_admin_1_6", "packaging"]
nox.options.reuse_existing_virtualenvs = True

# pyenv installs each version under $PYENV_ROOT/versions/X.Y.Z; its shims only answer for the
# versions it has selected, so put the real interpreters on PATH for nox to find.
_pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
_bins = [d for v in PYTHONS for d in sorted(glob.glob(f"{_pyenv}/versions/{v}.*/bin"))[-1:]]
os.environ["PATH"] = os.pathsep.join([*_bins, os.environ.get("PATH", "")])


def _pytest(session: nox.Session, *default: str) -> None:
    args = session.posargs or ["-n", "2", *default]
    session.run("python", "-m", "pytest", "-m", "not browser and not packaging", *args)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The non-browser suite with the newest versions pyproject.toml allows."""
    session.install("-e", ".[dev]")
    _pytest(session)


@nox.session(python=PYTHONS[0])
def lowest(session: nox.Session) -> None:
    """The non-browser suite with every dependency at the lowest version pyproject.toml allows."""
    session.install("-c", LOWEST, "-e", ".[dev]")
    session.run("python", "-m", "pip", "check")
    _pytest(session)


@nox.session(python=PYTHONS[-1])
def packaging(session: nox.Session) -> None:
    """Build the sdist and wheel, twine check them, and run the installed-wheel test."""
    session.install("-e", ".[dev]")
    session.run("python", "-m", "pytest", "-m", "packaging", *session.posargs)


@nox.session(python=PYTHONS[0])
def flask_admin_1_6(session: nox.Session) -> None:
    """Flask-Admin 1.6 is refused at init_app in plain words (pip already refuses the pair;
    this installs 1.6.1 over the resolver, as a lock file or ``--no-deps`` would)."""
    session.install("-e", ".[dev]")
    session.install("--no-deps", "flask-admin==1.6.1")
    session.run("python", "-m", "pytest", "-p", "no:xdist", "tests/test_versions.py", "-rs", "-q")
