"""Command line: ``python -m load.run SCENARIO [SCENARIO ...] [options]``.

Scenarios run in the order given against a compose deployment on 127.0.0.1; each prints
a table, ``--json-out`` writes everything as JSON. Exit status: 0 when every request of
every scenario succeeded with the right answer, 1 otherwise, 2 when there was nothing to
test (no service answering, too few replicas).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from load.compose import Project
from load.driver import LoadConfig, require_loopback
from load.payloads import KINDS, build_payloads
from load.report import Report
from load.scenarios import SCENARIOS, Settings
from load.stats import markdown_table

__all__ = ["main"]

# Payload kinds when --kinds is not given: all of them for steady, a mix of small and
# large requests while replicas are replaced, and large ones (long in flight) for drain.
_DEFAULT_KINDS = {
    "steady": list(KINDS),
    "replica-loss": ["small-msgpack", "medium-b64", "large"],
    "rolling": ["small-msgpack", "medium-b64", "large"],
    "drain": ["large"],
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m load.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "scenarios",
        nargs="+",
        choices=list(SCENARIOS),
        metavar="SCENARIO",
        help=f"one or more of: {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--base-url",
        default="http://127.0.0.1:8000",
        help="the load balancer (loopback only; default %(default)s)",
    )
    parser.add_argument(
        "--project",
        default=os.environ.get("COMPOSE_PROJECT_NAME", "scorer"),
        help="compose project whose replicas the scenarios disrupt "
        "(default $COMPOSE_PROJECT_NAME or %(default)s)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=20.0,
        help="seconds of load: per payload kind for steady, at least this "
        "long for the others (default %(default)s)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="requests in flight at any time (default %(default)s)",
    )
    parser.add_argument(
        "--max-requests",
        type=int,
        default=100_000,
        help="stop a run after this many requests (default %(default)s)",
    )
    parser.add_argument("--kinds", help=f"comma-separated payload kinds: {', '.join(KINDS)}")
    parser.add_argument(
        "--variants",
        type=int,
        default=4,
        help="distinct seeded bodies per kind (default %(default)s)",
    )
    parser.add_argument(
        "--verify-fraction",
        type=float,
        default=0.1,
        help="fraction of responses whose per-sample losses are all compared "
        "(the loss of every response is; default %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="per-request timeout in seconds (default %(default)s)",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="seconds a stopping replica gets before SIGKILL (default %(default)s)",
    )
    parser.add_argument("--json-out", type=Path, help="write the full results here as JSON")
    return parser


def _machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    memory = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "python": platform.python_version(),
    }


async def _wait_ready(base_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base_url, timeout=5.0, trust_env=False) as client:
        while True:
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{base_url}/readyz did not answer 200 in {timeout:.0f} s")
            await asyncio.sleep(0.5)


async def _main(args: argparse.Namespace) -> tuple[list[Report], dict[str, Any]]:
    await _wait_ready(args.base_url, 60.0)
    project = Project(args.project)
    replicas = [c for c in await project.containers() if c.running]
    context = {"replicas": len(replicas), "project": args.project}
    reports = []
    for name in args.scenarios:
        kinds = args.kinds.split(",") if args.kinds else _DEFAULT_KINDS[name]
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown payload kinds {unknown}; known: {', '.join(KINDS)}")
        settings = Settings(
            load=LoadConfig(
                base_url=args.base_url,
                concurrency=args.concurrency,
                max_requests=args.max_requests,
                verify_fraction=args.verify_fraction,
                seed=args.seed,
                request_timeout=args.timeout,
            ),
            payloads={k: build_payloads(KINDS[k], args.seed, args.variants) for k in kinds},
            project=project,
            duration=args.duration,
            grace=args.grace,
        )
        report = await SCENARIOS[name](settings)
        _print(report)
        reports.append(report)
        await _wait_ready(args.base_url, 60.0)
    return reports, context


def _print(report: Report) -> None:
    print(f"\n## {report.scenario}: {'PASSED' if report.passed else 'FAILED'}\n")
    print(markdown_table(report.rows))
    for t, what in report.events:
        print(f"  t={t:7.2f}s  {what}")
    for key, value in report.notes.items():
        print(f"  {key}: {value}")
    for failure in report.failures:
        print(f"  FAILURE {failure}")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    # Everything shares the machine's cores: say how busy it was before the load began.
    busy = os.getloadavg()[0]
    print(
        f"load.run: {', '.join(args.scenarios)} at {started:%Y-%m-%d %H:%M} UTC, "
        f"load average {busy:.2f} on {os.cpu_count()} cores"
    )
    try:
        require_loopback(args.base_url)
        reports, context = asyncio.run(_main(args))
    except (ValueError, TimeoutError, RuntimeError) as exc:
        print(f"load.run: {exc}", file=sys.stderr)
        return 2
    passed = all(r.passed for r in reports)
    result = {
        "date": started.isoformat(timespec="seconds"),
        "machine": {**_machine(), "load_average_before": round(busy, 2)},
        "base_url": args.base_url,
        **context,
        "config": {k: v for k, v in vars(args).items() if k not in {"json_out", "scenarios"}},
        "scenarios": [r.as_dict() for r in reports],
        "passed": passed,
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print("\nload.run:", "PASSED" if passed else "FAILED", f"({', '.join(args.scenarios)})")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
