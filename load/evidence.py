"""Evidence from nginx's access log: retries, which replica answered, what spanned a moment."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from load.compose import Container, LbEntry
from load.driver import ENDPOINT

__all__ = ["addresses", "held", "scoring", "summary"]


def addresses(container: Container) -> set[str]:
    """How nginx's log names the replica: ``ip:port``."""
    return {f"{ip}:8000" for ip in container.ips}


def scoring(entries: Sequence[LbEntry]) -> list[LbEntry]:
    """The scoring requests (not the health probes)."""
    return [e for e in entries if f" {ENDPOINT} " in e.request]


def summary(entries: Sequence[LbEntry]) -> dict[str, Any]:
    """Requests seen, requests resent to another replica, answers per replica."""
    seen = scoring(entries)
    return {
        "lb_requests": len(seen),
        "lb_retried": sum(len(e.upstreams) > 1 for e in seen),
        "lb_by_replica": dict(Counter(e.upstreams[-1] for e in seen)),
    }


def held(entries: Sequence[LbEntry], at: float, replica: set[str]) -> list[LbEntry]:
    """Requests answered by ``replica`` alone (no retry) that spanned the time ``at``."""
    return [
        e
        for e in scoring(entries)
        if len(e.upstreams) == 1
        and e.upstreams[0] in replica
        and e.status == 200
        and e.start < at < e.end
    ]
