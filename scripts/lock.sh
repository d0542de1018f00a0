#!/usr/bin/env bash
# The lock: uv.lock (every package of the runtime and the extras, for any platform) and
# requirements.txt (the runtime's part of it with hashes, which the Docker image installs
# with plain pip). Both are committed and come from one resolution.
#
#   bash scripts/lock.sh --upgrade  # upgrade: the newest versions pyproject.toml allows
#   bash scripts/lock.sh            # after editing pyproject.toml: follow it, keep other pins
#   bash scripts/lock.sh --check    # fail unless both files match pyproject.toml (CI does this)
set -euo pipefail
cd "$(dirname "$0")/.."
export_runtime() {
    echo "# The runtime part of uv.lock, for pip --require-hashes: made by scripts/lock.sh; do not edit."
    bash scripts/uv.sh export --quiet --frozen --no-dev --no-emit-workspace --no-header \
        --format requirements-txt
}
if [ "${1:-}" = "--check" ]; then
    bash scripts/uv.sh lock --check || {
        echo "uv.lock does not match pyproject.toml: run 'bash scripts/lock.sh'" >&2
        exit 1
    }
    diff -u requirements.txt <(export_runtime) >&2 || {
        echo "requirements.txt is not the export of uv.lock: run 'bash scripts/lock.sh'" >&2
        exit 1
    }
    exit 0
fi
case "${1:-}" in
    "") bash scripts/uv.sh lock ;;
    --upgrade) bash scripts/uv.sh lock --upgrade ;;
    *) echo "usage: scripts/lock.sh [--upgrade | --check]" >&2; exit 2 ;;
esac
export_runtime > requirements.txt
