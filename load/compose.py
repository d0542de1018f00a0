"""The compose project under test, driven through the docker CLI.

Every action names a container by id and first checks that the container carries this
project's labels: the load test never touches anything outside its own project.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Container", "DockerError", "LbEntry", "Project"]


class DockerError(RuntimeError):
    """A docker command failed or did not finish in time."""


@dataclass(frozen=True)
class Container:
    """What the scenarios need to know about one container."""

    id: str
    name: str
    number: int
    status: str
    health: str
    exit_code: int
    ips: tuple[str, ...]

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass(frozen=True)
class LbEntry:
    """One line of nginx's access log (see deploy/nginx/default.conf, log_format)."""

    request: str
    status: int
    end: float
    seconds: float
    upstreams: tuple[str, ...]

    @property
    def start(self) -> float:
        return self.end - self.seconds


_LB_LINE = re.compile(
    r'"(?P<request>[^"]*)" (?P<status>\d{3}) \d+ t=(?P<end>[\d.]+) rt=(?P<rt>[\d.]+) '
    r'upstream="(?P<up>[^"]*)"'
)


def _parse(raw: dict[str, Any]) -> Container:
    state = raw["State"]
    networks = raw.get("NetworkSettings", {}).get("Networks") or {}
    labels = raw["Config"].get("Labels") or {}
    return Container(
        id=raw["Id"],
        name=raw["Name"].lstrip("/"),
        number=int(labels.get("com.docker.compose.container-number", 0)),
        status=state["Status"],
        health=(state.get("Health") or {}).get("Status", "none"),
        exit_code=int(state.get("ExitCode", 0)),
        ips=tuple(n["IPAddress"] for n in networks.values() if n.get("IPAddress")),
    )


class Project:
    """The ``api`` replicas and the ``lb`` of one compose project."""

    def __init__(self, name: str, service: str = "api", lb_service: str = "lb") -> None:
        self.name = name
        self.service = service
        self.lb_service = lb_service

    async def _docker(self, *args: str, timeout: float = 60.0) -> str:
        proc = await asyncio.create_subprocess_exec(
            "docker",
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise DockerError(f"docker {' '.join(args)}: no answer in {timeout:.0f} s") from None
        if proc.returncode:
            raise DockerError(f"docker {' '.join(args)}: {err.decode(errors='replace').strip()}")
        return out.decode(errors="replace")

    async def containers(self, service: str | None = None) -> list[Container]:
        """This project's containers of ``service`` (default: the api), by replica number."""
        ids = (
            await self._docker(
                "ps",
                "--all",
                "--quiet",
                "--filter",
                f"label=com.docker.compose.project={self.name}",
                "--filter",
                f"label=com.docker.compose.service={service or self.service}",
            )
        ).split()
        if not ids:
            return []
        found = [_parse(raw) for raw in json.loads(await self._docker("inspect", *ids))]
        return sorted(found, key=lambda c: c.number)

    async def inspect(self, container_id: str) -> Container:
        """The api container ``container_id``; refuses any container not of this project."""
        for container in await self.containers():
            if container.id == container_id:
                return container
        raise DockerError(f"{container_id[:12]} is not an api container of project {self.name}")

    async def signal(self, container_id: str, signal: str) -> None:
        """Send ``signal`` (KILL, TERM) to the replica's main process."""
        await self.inspect(container_id)
        await self._docker("kill", "--signal", signal, container_id)

    async def stop(self, container_id: str, grace: float) -> None:
        """Stop the replica: SIGTERM, then SIGKILL after ``grace`` seconds."""
        await self.inspect(container_id)
        await self._docker("stop", "--time", str(int(grace)), container_id, timeout=grace + 30)

    async def start(self, container_id: str) -> None:
        await self.inspect(container_id)
        await self._docker("start", container_id)

    async def wait_for(self, container_id: str, want: str, timeout: float) -> Container:
        """Poll until the replica's health (``healthy``) or status (``exited``) is ``want``."""
        deadline = time.monotonic() + timeout
        while True:
            container = await self.inspect(container_id)
            if want in (container.health, container.status):
                return container
            if time.monotonic() > deadline:
                raise DockerError(
                    f"{container.name} not {want} after {timeout:.0f} s "
                    f"(status {container.status}, health {container.health})"
                )
            await asyncio.sleep(0.25)

    async def lb_log(self, since: float) -> list[LbEntry]:
        """nginx's access log lines since the epoch time ``since``."""
        entries: list[LbEntry] = []
        for lb in await self.containers(self.lb_service):
            text = await self._docker("logs", "--since", f"{since:.3f}", lb.id, timeout=120)
            for match in _LB_LINE.finditer(text):
                entries.append(
                    LbEntry(
                        request=match["request"],
                        status=int(match["status"]),
                        end=float(match["end"]),
                        seconds=float(match["rt"]),
                        upstreams=tuple(u.strip() for u in match["up"].split(",")),
                    )
                )
        return entries
