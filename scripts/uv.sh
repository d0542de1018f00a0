#!/usr/bin/env bash
# uv, pinned: the tool that resolves uv.lock and installs the project from it.
# Installed on first use into ./.uv with pip (all a fresh machine needs); the scripts call
# it instead of any uv on PATH, so that every machine reads and writes the lock alike.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9
if [ "$(.uv/bin/uv --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
    python3 -m venv .uv
    .uv/bin/python -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
# The machine's Python 3.11+, never one downloaded by uv.
export UV_PYTHON_DOWNLOADS="${UV_PYTHON_DOWNLOADS:-never}"
exec .uv/bin/uv "$@"
