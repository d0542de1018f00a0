"""Summaries of a load run: throughput, latency percentiles, failures; as a table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from load.checks import Outcome
from load.driver import Record

__all__ = ["Summary", "markdown_table", "summarize"]

_MB = 1e6


@dataclass(frozen=True)
class Summary:
    """One row of the results table. MB are 10^6 bytes; latencies in milliseconds."""

    scenario: str
    payload: str
    requests: int
    ok: int
    errors: int
    wrong: int
    seconds: float
    req_per_s: float
    logits_mb_per_s: float
    body_mb_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(scenario: str, payload: str, records: Sequence[Record], seconds: float) -> Summary:
    """Aggregate ``records`` of a run that lasted ``seconds``."""
    ok = [r for r in records if r.outcome is Outcome.OK]
    latencies = np.array([r.latency for r in records], dtype=np.float64) * 1e3
    if latencies.size:
        p50, p95, p99 = (float(v) for v in np.percentile(latencies, [50, 95, 99]))
        worst = float(latencies.max())
    else:
        p50 = p95 = p99 = worst = float("nan")
    per_s = 1.0 / seconds if seconds > 0 else 0.0
    return Summary(
        scenario=scenario,
        payload=payload,
        requests=len(records),
        ok=len(ok),
        errors=sum(r.outcome is Outcome.ERROR for r in records),
        wrong=sum(r.outcome is Outcome.WRONG for r in records),
        seconds=round(seconds, 3),
        req_per_s=len(ok) * per_s,
        logits_mb_per_s=sum(r.logits_nbytes for r in ok) / _MB * per_s,
        body_mb_per_s=sum(r.body_nbytes for r in ok) / _MB * per_s,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=worst,
    )


_COLUMNS = (
    ("scenario", "scenario", "{}"),
    ("payload", "payload", "{}"),
    ("requests", "requests", "{}"),
    ("errors", "errors", "{}"),
    ("wrong", "wrong", "{}"),
    ("req/s", "req_per_s", "{:.1f}"),
    ("logits MB/s", "logits_mb_per_s", "{:.2f}"),
    ("p50 ms", "p50_ms", "{:.1f}"),
    ("p95 ms", "p95_ms", "{:.1f}"),
    ("p99 ms", "p99_ms", "{:.1f}"),
)


def markdown_table(rows: Sequence[Summary]) -> str:
    """The rows as a Markdown table (it reads as plain text too)."""
    cells = [[title for title, _, _ in _COLUMNS]]
    for row in rows:
        values = row.as_dict()
        cells.append([fmt.format(values[key]) for _, key, fmt in _COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(_COLUMNS))]
    numeric = [i >= 2 for i in range(len(_COLUMNS))]

    def line(values: list[str]) -> str:
        padded = (
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        )
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if right else "-" * (w + 2)
            for w, right in zip(widths, numeric, strict=True)
        )
        + "|"
    )
    return "\n".join([line(cells[0]), rule, *(line(c) for c in cells[1:])])
