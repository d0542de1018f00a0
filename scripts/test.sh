#!/usr/bin/env bash
# The whole test suite: lint, types, unit, API, client and container tests.
# Creates ./.venv on first use and installs the project with its dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
.venv/bin/ruff check app tests load bench
.venv/bin/ruff format --check app tests load bench
.venv/bin/mypy
exec .venv/bin/pytest "$@"
