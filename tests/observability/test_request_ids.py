"""Minted request ids: unique per process by a counter, across processes by a random prefix."""

from __future__ import annotations

import os

from app.observability.middleware import _IDS, request_id


def test_minted_ids_are_32_hex_digits_and_never_repeat() -> None:
    ids = [request_id(b"") for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_a_usable_caller_id_is_kept_and_an_unusable_one_replaced() -> None:
    assert request_id(b"trace-1") == "trace-1"
    assert len(request_id(b"x" * 129)) == 32
    assert len(request_id("é".encode())) == 32
    assert len(request_id(b"a\x07b")) == 32


def test_a_forked_worker_draws_its_own_prefix() -> None:
    # Pre-fork servers (gunicorn) import the app before forking its workers.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        os.write(write, _IDS.mint().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 32
    assert child[:16] != _IDS.mint()[:16]
