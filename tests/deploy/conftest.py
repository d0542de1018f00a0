"""Container tests: build the image, run the compose stack on loopback, load it.

They need a Docker engine with Compose v2 (on these machines: ../shared/container/setup).
Where none answers they skip and say why; with CI=true they fail instead. The stack runs
under its own compose project name and port, and is torn down (``down -v``) at the end of
the session whatever happened.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_UP_TIMEOUT = 900  # a first build installs every wheel
_REQUIRED = os.environ.get("CI", "").lower() == "true"
_PROJECT = re.compile(r"scorer-test-(?P<pid>\d+)-[0-9a-f]{6}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "deploy: builds and runs the containers; needs a Docker engine "
        "(skipped without one, required with CI=true)",
    )


def _engine_problem() -> str | None:
    """Why the container tests cannot run here, or None when they can."""
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    for args, what in (
        (["docker", "info"], "no Docker engine answers"),
        (["docker", "compose", "version"], "Docker Compose v2 (`docker compose`) is missing"),
    ):
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            return f"{what} (`{' '.join(args)}` timed out)"
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or [""])[-1]
            return f"{what} (`{' '.join(args)}`: {last})"
    return None


def _remove_abandoned_stacks() -> None:
    """Remove stacks of earlier test sessions whose process died without tearing down.

    Only projects named by this fixture (``scorer-test-<pid>-<hex>``) whose pid is gone.
    """
    listed = subprocess.run(
        ["docker", "ps", "--all", "--format", '{{.Label "com.docker.compose.project"}}'],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    for project in set(listed.stdout.split()):
        match = _PROJECT.fullmatch(project)
        if match and not Path(f"/proc/{match['pid']}").exists():
            subprocess.run(
                [
                    "docker",
                    "compose",
                    "--project-name",
                    project,
                    "down",
                    "--volumes",
                    "--remove-orphans",
                    "--rmi",
                    "local",
                    "--timeout",
                    "10",
                ],
                cwd=ROOT,
                capture_output=True,
                timeout=300,
                check=False,
            )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Stack:
    """A running compose project: its name, the load balancer's URL and gRPC address."""

    project: str
    base_url: str
    env: dict[str, str]
    grpc_address: str

    def compose(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "compose", "--project-name", self.project, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The stack, built from this tree and healthy; removed again after the session."""
    problem = _engine_problem()
    if problem:
        reason = f"container tests need a Docker engine: {problem}; run ../shared/container/setup"
        if _REQUIRED:
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    _remove_abandoned_stacks()
    project = f"scorer-test-{os.getpid()}-{secrets.token_hex(3)}"
    port, grpc_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "SCORER_PORT": str(port),
        "SCORER_GRPC_PUBLISH_PORT": str(grpc_port),
        "COMPOSE_PROJECT_NAME": project,
    }
    stack = Stack(project, f"http://127.0.0.1:{port}", env, f"127.0.0.1:{grpc_port}")

    try:
        up = stack.compose("up", "--detach", "--build", "--wait", timeout=_UP_TIMEOUT)
        if up.returncode != 0:
            logs = stack.compose("logs", "--no-color", "--tail", "50").stdout
            pytest.fail(
                f"docker compose up failed ({up.returncode}):\n{up.stdout}\n{up.stderr}\n{logs}",
                pytrace=False,
            )
        yield stack
    finally:
        # Also after a failed or interrupted `up`: a half-started stack is removed too.
        stack.compose(
            "down",
            "--volumes",
            "--remove-orphans",
            "--rmi",
            "local",
            "--timeout",
            "30",
            timeout=300,
        )
