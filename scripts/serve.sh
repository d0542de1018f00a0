#!/usr/bin/env bash
# Run the service on 127.0.0.1:8000 (override with HOST / PORT; WEB_CONCURRENCY workers).
# Installs the project into ./.venv from uv.lock (scripts/uv.sh); --inexact leaves the
# dev extra there when scripts/test.sh put it in.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/uv.sh sync --quiet --locked --inexact
# Large arrays from the heap, kept between requests (see the Dockerfile).
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.mmap_threshold=134217728:glibc.malloc.trim_threshold=134217728}"
# uvicorn with a listening socket per worker and the connection limits (app/serve.py,
# app/protocol.py). After SIGTERM, requests in flight get at most
# SCORER_GRACEFUL_SHUTDOWN_SECONDS (default 20) to finish: app.serve reads the setting.
exec .venv/bin/python -m app.serve --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" \
    --workers "${WEB_CONCURRENCY:-1}" --no-server-header
