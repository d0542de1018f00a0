"""Profile the service under load with py-spy and summarise where the time goes.

    /work/bench-venv/bin/python -m bench.profile [--scenario small|large|json|all] [--seconds 10]

Starts the service as ``bench.http`` does (``python -m app.serve``, one worker,
127.0.0.1), drives it with wrk as there ("small": [64, 10] JSON at 16 connections;
"large": [4096, 1000] float32 msgpack tensor with probabilities, one connection;
"json": [4096, 1000] JSON lists, one connection), records the worker with
``py-spy record --format raw`` (needs ptrace, i.e. root or CAP_SYS_PTRACE), and prints the
share of on-CPU samples per stage and the top functions, inclusive and self. Raw stacks
are kept in ``$TMPDIR/bench-profile-<scenario>.txt`` (collapsed stacks, for flame graphs).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

from bench._timing import table
from bench.http import Scenario, check, serving, wrk
from bench.payloads import body

PROFILES = {
    "small": Scenario("64x10 json c16", (64, 10), "json", False, ("per_sample",), 16),
    "large": Scenario(
        "4096x1000 f32 tensor+probs c1", (4096, 1000), "msgpack", True, ("per_sample", "probs"), 1
    ),
    "json": Scenario("4096x1000 json c1", (4096, 1000), "json", False, ("per_sample",), 1),
}

# First rule whose marker appears in a stack (searched from the leaf up) names its stage.
STAGES = [
    ("app/core/", "core (NumPy)"),
    ("bench/servers/", "reference endpoint"),
    ("app/codecs/", "codecs"),
    ("encode (", "codecs"),
    ("app/api/", "api (validation, response tree)"),
    ("pydantic", "api (validation, response tree)"),
    ("body.py", "body reception"),
    ("stream (", "body reception"),
    ("starlette/", "starlette / fastapi"),
    ("fastapi/", "starlette / fastapi"),
    ("uvicorn/", "uvicorn (HTTP parsing, transport)"),
    ("anyio/", "threadpool hand-off (anyio)"),
    ("concurrent/", "threadpool hand-off (anyio)"),
    ("threading.py", "threadpool hand-off (anyio)"),
    ("asyncio/", "event loop"),
    ("uvloop", "event loop"),
]


# py-spy cannot always tell a thread parked on a lock from a running one: drop those stacks.
# A concurrent.futures worker parked on its SimpleQueue (a C call) has _worker as its leaf.
IDLE_LEAVES = (
    "Condition.wait (",
    "Queue.get (",
    "Event.wait (",
    "Thread._wait_for_tstate_lock (",
    "_worker (",
)


def stage(frames: list[str]) -> str:
    """The stage of one stack: the deepest frame that matches a rule."""
    for frame in reversed(frames):
        for marker, name in STAGES:
            if marker in frame:
                return name
    return "other"


def summarise(raw: Path, top: int = 15) -> str:
    """Stage shares, then top functions inclusive and self, from py-spy's raw output."""
    stages: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaf: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")[1:]  # the first entry names the process / thread
        if frames and _short(frames[-1]).startswith(IDLE_LEAVES):
            continue
        total += count
        stages[stage(frames)] += count
        for name in dict.fromkeys(_short(f) for f in frames):
            inclusive[name] += count
        leaf[_short(frames[-1]) if frames else "?"] += count
    if not total:
        return "no samples"
    # Frames on (nearly) every stack are the server's main loop: say nothing.
    below = [(k, v) for k, v in inclusive.most_common() if v < 0.95 * total][:top]
    parts = [
        f"{total} on-CPU samples",
        table(["stage", "share"], [[k, f"{v / total:.1%}"] for k, v in stages.most_common()]),
        table(
            ["function (inclusive)", "share"],
            [[k, f"{v / total:.1%}"] for k, v in below],
        ),
        table(
            ["function (self)", "share"],
            [[k, f"{v / total:.1%}"] for k, v in leaf.most_common(top)],
        ),
    ]
    return "\n\n".join(parts)


def _short(frame: str) -> str:
    # "name (path/to/site-packages/pkg/module.py:123)" -> "name (pkg/module.py)"
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for cut in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if cut in path:
            path = path.split(cut, 1)[1]
    return f"{name} ({path})"


def profile(name: str, seconds: int, log: Path, target: str = "app.main:app") -> str:
    """Record the service under one load and return the summary."""
    scenario = PROFILES[name]
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    raw = Path(tempfile.gettempdir()) / f"bench-profile-{name}.txt"
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        path = Path(tmp) / "body"
        payload = body(scenario.shape, scenario.encoding, scenario.tensor, scenario.outputs)
        path.write_bytes(payload)
        with serving(target, 1, seconds + 120, log) as server:
            check(server, scenario, payload)
            wrk(server.port, scenario, path, 2)  # warm-up
            command = [
                py_spy, "record", "--pid", str(server.pids()[-1]), "--format", "raw",
                "--output", str(raw), "--duration", str(seconds), "--rate", "250", "--threads",
            ]  # fmt: skip
            load = threading.Thread(target=wrk, args=(server.port, scenario, path, seconds + 1))
            load.start()
            subprocess.run(command, check=True, capture_output=True, timeout=seconds + 60)
            load.join()
    return f"### {name}: {scenario.name}\n\n{summarise(raw)}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=[*PROFILES, "all"], default="all")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--target", default="app.main:app", help="the ASGI app to profile")
    args = parser.parse_args(argv)
    log = Path(tempfile.gettempdir()) / "bench-profile-servers.log"
    names = list(PROFILES) if args.scenario == "all" else [args.scenario]
    print("\n\n".join(profile(name, args.seconds, log, args.target) for name in names))


if __name__ == "__main__":
    main()
