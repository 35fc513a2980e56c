#!/usr/bin/env bash
# Install everything the test suite needs and run it: ruff, then pytest.
# Usage: bash scripts/test.sh [pytest arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Installing flask-connectwise with its [dev] extra"
python3 -m pip install --disable-pip-version-check -q -e '.[dev]'

step "Linting (ruff)"
python3 -m ruff check .

step "Running the test suite"
python3 -m pytest "$@"
