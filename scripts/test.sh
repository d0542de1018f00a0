#!/usr/bin/env bash
# The whole test suite: the lock, lint, types, unit, API, client and container tests.
# Installs the project with its dev extra into ./.venv from uv.lock (scripts/uv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/lock.sh --check
bash scripts/uv.sh sync --quiet --locked --extra dev
.venv/bin/ruff check app clients tests load bench
.venv/bin/ruff format --check app clients tests load bench
.venv/bin/mypy
exec .venv/bin/pytest "$@"
