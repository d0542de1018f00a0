"""The threads the large-batch path shares: one pool per process, blocks claimed in turn."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["POOL", "Claim", "Pool"]


class Pool:
    """A thread pool shared by all calls, created on first use, replaced when too small."""

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Start with no executor; also in a forked child, which lacks the parent's threads."""
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._size = 0

    def submit(self, fn: Callable[[], None], copies: int) -> list[Future[None]]:
        """Run ``copies`` calls of ``fn`` in the pool, which gets a thread for each."""
        # Submitting under the lock: another call may replace (shut down) the executor.
        with self._lock:
            if self._executor is None or self._size < copies:
                if self._executor is not None:
                    self._executor.shutdown(wait=False)  # its pending tasks still run
                self._size = copies
                self._executor = ThreadPoolExecutor(copies, thread_name_prefix="scorer-core")
            return [self._executor.submit(fn) for _ in range(copies)]


POOL = Pool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=POOL.forget)


class Claim:
    """``enumerate(blocks)`` that several threads can share: each block goes to one."""

    def __init__(self, blocks: range) -> None:
        self._blocks = enumerate(blocks)
        self._lock = threading.Lock()

    def __iter__(self) -> Claim:
        return self

    def __next__(self) -> tuple[int, int]:
        with self._lock:
            return next(self._blocks)
