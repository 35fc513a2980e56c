#!/usr/bin/env bash
# Install everything the test suite needs, start its services on loopback, run it, stop them.
#   bash scripts/test.sh [pytest arguments...]
# System packages (PostgreSQL, Redis, Chromium) are installed with apt-get when missing; this
# needs root, as on CI. Python packages go into the current Python environment.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
# Run a command up to three times (registries and mirrors have bad moments).
retry() { "$@" || { sleep 5; "$@"; } || { sleep 15; "$@"; }; }

need_apt=()
command -v pg_ctlcluster >/dev/null 2>&1 || need_apt+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if ((${#need_apt[@]})); then
    step "Installing system packages: ${need_apt[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "Run as root (or install ${need_apt[*]} yourself) to run the whole suite." >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    retry apt-get update -qq
    retry apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

step "Installing flask-connectwise with its [dev] extra"
retry python3 -m pip install --disable-pip-version-check -q -e '.[dev]'

step "Installing axe-core (accessibility checks in the browser tests)"
retry npm install --prefix .cache/npm --no-audit --no-fund --no-save --silent axe-core@4 >/dev/null

step "Starting PostgreSQL and Redis on loopback"
source scripts/services.sh
start_services
trap stop_services EXIT

step "Linting (ruff) and type-checking (mypy)"
python3 -m ruff check .
python3 -m mypy --strict flask_connectwise

step "Building the docs (Sphinx, warnings are errors)"
python3 -m sphinx -W --keep-going -q -b html docs docs/_build/html

step "Running the test suite"
export CONNECTWISE_TEST_REQUIRE_SERVICES=1
# Exit code 5 means "nothing selected" (e.g. arguments that pick only one kind of test).
python3 -m pytest -n 2 -m "not browser" "$@" || [ $? -eq 5 ]

step "Running the dependency-facing tests on the lowest versions pyproject.toml allows"
# tests/constraints-lowest.txt pins every lower bound; a venv of its own keeps them apart from
# the newest versions above. These files are where the suite meets Flask(-Admin), WTForms,
# SQLAlchemy/Alembic/Flask-Migrate, Flask-Caching, requests, cryptography, Click, Flask-Login/WTF,
# Celery and RQ (about a minute); the whole suite on every Python and set is `nox`
# (docs/versions.md).
lowest=.cache/lowest-venv
[ -x "$lowest/bin/python" ] || python3 -m venv "$lowest"
retry "$lowest/bin/python" -m pip install --disable-pip-version-check -q \
    -c tests/constraints-lowest.txt -e '.[dev]'
"$lowest/bin/python" -m pip check
lowest_tests=(tests/test_admin.py tests/test_admin_choices.py tests/test_admin_hostile.py
    tests/test_changelog_view.py tests/test_tenant_settings.py tests/test_fields.py
    tests/test_change_notes.py tests/test_migrations.py tests/test_cache.py
    tests/test_client_http.py tests/test_crypto.py tests/test_cli.py tests/test_example_app.py
    tests/test_outbox.py tests/test_dispatch.py tests/test_versions.py)
(($#)) && lowest_tests=("$@")
"$lowest/bin/python" -m pytest -n 2 -m "not browser and not packaging" "${lowest_tests[@]}" \
    || [ $? -eq 5 ]

step "Running the browser tests (headless Chromium, one at a time on a quiet machine)"
python3 -m pytest -m browser "$@" || [ $? -eq 5 ]
