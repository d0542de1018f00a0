"""Timing, memory and table helpers shared by the benchmarks."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def timeit(fn: Callable[[], object], budget: float = 0.4, min_rounds: int = 5) -> dict[str, float]:
    """Median and minimum seconds per call of ``fn``.

    Fast calls are batched so that one timed round lasts at least 2 ms; rounds repeat
    until ``budget`` seconds have passed and at least ``min_rounds`` were taken.
    """
    fn()  # warm: lazy imports, allocator, caches
    start = time.perf_counter()
    fn()
    single = time.perf_counter() - start
    number = max(1, int(2e-3 / max(single, 1e-9)))
    rounds: list[float] = []
    begin = time.perf_counter()
    while len(rounds) < min_rounds or time.perf_counter() - begin < budget:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - start) / number)
        if len(rounds) >= 1000:
            break
    return {"median": statistics.median(rounds), "min": min(rounds), "rounds": len(rounds)}


def busy_cores(seconds: float = 0.5) -> float:
    """Cores the whole machine kept busy over ``seconds`` (from /proc/stat)."""

    def busy() -> tuple[float, float]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields[:8]) - idle, time.monotonic()

    b0, t0 = busy()
    time.sleep(seconds)
    b1, t1 = busy()
    return (b1 - b0) / os.sysconf("SC_CLK_TCK") / (t1 - t0)


def wait_for_quiet(limit: float = 0.3, patience: float = 30.0) -> float:
    """Wait up to ``patience`` s for other processes to use under ``limit`` cores.

    The machine may be shared; returns the background load last seen, which the
    benchmarks record beside each measurement so that a noisy one can be spotted.
    """
    deadline = time.monotonic() + patience
    load = busy_cores()
    while load > limit and time.monotonic() < deadline:
        load = busy_cores()
    return load


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak bytes allocated while ``fn`` runs, through tracemalloc (NumPy reports its buffers).

    The result of ``fn`` is counted: a loss+probabilities call returns a logits-sized array.
    """
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn()
        peak = tracemalloc.get_traced_memory()[1] - base
        del result
    finally:
        tracemalloc.stop()
    return peak


def machine() -> dict[str, Any]:
    """Date, CPU model, core count and library versions, for the results header."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "openblas_env": {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")},
    }


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` and return its path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1, default=float) + "\n")
    return path


def fmt_time(seconds: float) -> str:
    """Seconds in a readable unit."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"
