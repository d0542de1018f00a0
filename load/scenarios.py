"""The scenarios: steady load per payload kind, and load while replicas die or restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from load import evidence
from load.compose import Container, DockerError, Project
from load.driver import LoadConfig, LoadRun
from load.payloads import Payload
from load.report import Report

__all__ = ["SCENARIOS", "Settings"]

# Time for nginx to see a replica that came back (its DNS cache lives 2 s).
_SETTLE = 2.0
# nginx writes its access log every second.
_LOG_FLUSH = 1.5
# uvicorn re-raises the SIGTERM it handled once it has shut down: 143 = 128 + 15.
_CLEAN_EXIT = {0, 128 + 15}
_DRAIN_ATTEMPTS = 3


@dataclass(frozen=True)
class Settings:
    """What every scenario gets: the load, the payloads per kind, the project, the clock."""

    load: LoadConfig
    payloads: dict[str, list[Payload]]
    project: Project
    duration: float
    grace: float = 30.0


async def steady(settings: Settings) -> Report:
    """Each payload kind in turn, ``duration`` seconds each, at constant concurrency."""
    report = Report("steady")
    for kind, payloads in settings.payloads.items():
        run = LoadRun(settings.load, payloads)
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(settings.duration, stop.set)
        await run.run(stop)
        report.add_run(run)
        report.events.append((run.elapsed, f"{kind}: {len(run.records)} requests"))
    return report


Action = Callable[[LoadRun], Awaitable[None]]


async def _under_load(settings: Settings, report: Report, action: Action) -> None:
    """Run the mixed load, do ``action`` meanwhile, stop at the later of the two."""
    payloads = [p for kind in settings.payloads.values() for p in kind]
    run = LoadRun(settings.load, payloads)
    stop = asyncio.Event()
    load = asyncio.create_task(run.run(stop))
    await asyncio.sleep(0)
    try:
        await asyncio.wait_for(action(run), timeout=settings.duration + 300)
    except (DockerError, TimeoutError) as exc:
        report.failures.append(f"{report.scenario}: {exc or 'timed out'}")
    await asyncio.sleep(max(0.0, settings.duration - run.now()))
    stop.set()
    await asyncio.wait_for(load, timeout=settings.load.request_timeout + 30)
    report.add_run(run)
    await asyncio.sleep(_LOG_FLUSH)


async def _running(project: Project) -> list[Container]:
    replicas = [c for c in await project.containers() if c.running]
    if len(replicas) < 2:
        raise DockerError(
            f"project {project.name} has {len(replicas)} running api replica(s); "
            "a replica can be lost without failures only with 2 or more"
        )
    return replicas


async def replica_loss(settings: Settings) -> Report:
    """SIGKILL one replica under load, start it again: nothing fails, it serves again."""
    report = Report("replica-loss")
    project = settings.project
    wall0 = time.time()
    revived: list[tuple[Container, float]] = []

    async def action(run: LoadRun) -> None:
        victim = (await _running(project))[0]
        await asyncio.sleep(max(2.0, settings.duration * 0.2))
        report.event(run, f"docker kill (SIGKILL) {victim.name}")
        await project.signal(victim.id, "KILL")
        await asyncio.sleep(max(3.0, settings.duration * 0.25))
        report.event(run, f"docker start {victim.name}")
        await project.start(victim.id)
        revived.append((await project.wait_for(victim.id, "healthy", timeout=90), time.time()))
        report.event(run, f"{victim.name} healthy again")
        await asyncio.sleep(_SETTLE + 3.0)

    await _under_load(settings, report, action)
    entries = await project.lb_log(wall0)
    report.notes.update(evidence.summary(entries))
    if revived and evidence.scoring(entries):
        replica, back = revived[0]
        served = [
            e
            for e in evidence.scoring(entries)
            if e.start > back + _SETTLE and e.upstreams[-1] in evidence.addresses(replica)
        ]
        report.notes["served_by_revived_replica"] = len(served)
        if not served:
            report.failures.append(f"{replica.name} came back but nginx sent it nothing")
    return report


async def rolling(settings: Settings) -> Report:
    """Restart every replica, one at a time, under load (graceful stop, start, healthy)."""
    report = Report("rolling")
    project = settings.project
    wall0 = time.time()

    async def action(run: LoadRun) -> None:
        await asyncio.sleep(2.0)
        for replica in await _running(project):
            report.event(run, f"docker stop {replica.name}")
            await project.stop(replica.id, settings.grace)
            report.event(run, f"docker start {replica.name}")
            await project.start(replica.id)
            await project.wait_for(replica.id, "healthy", timeout=90)
            report.event(run, f"{replica.name} healthy again")
            await asyncio.sleep(_SETTLE)
        await asyncio.sleep(2.0)

    await _under_load(settings, report, action)
    report.notes.update(evidence.summary(await project.lb_log(wall0)))
    return report


async def drain(settings: Settings) -> Report:
    """SIGTERM a replica while it holds requests: every one completes, it exits cleanly.

    Should no request happen to be on the replica at that moment (nginx's log tells), the
    replica is started again and the SIGTERM repeated, up to three times.
    """
    report = Report("drain")
    project = settings.project
    wall0 = time.time()

    async def action(run: LoadRun) -> None:
        await asyncio.sleep(max(2.0, settings.duration * 0.2))
        for attempt in range(1, _DRAIN_ATTEMPTS + 1):
            victim = (await _running(project))[0]
            at = time.time()
            report.event(run, f"SIGTERM {victim.name} ({run.in_flight} requests in flight)")
            await project.signal(victim.id, "TERM")
            exited = await project.wait_for(victim.id, "exited", timeout=settings.grace + 10)
            took = time.time() - at
            report.notes["drain_exit_code"] = exited.exit_code
            report.notes["drain_seconds"] = round(took, 3)
            report.event(run, f"{victim.name} exited with {exited.exit_code} after {took:.1f} s")
            if exited.exit_code not in _CLEAN_EXIT:
                report.failures.append(f"{victim.name} exited with {exited.exit_code}")
            await project.start(victim.id)
            await project.wait_for(victim.id, "healthy", timeout=90)
            report.event(run, f"{victim.name} healthy again")
            await asyncio.sleep(max(_SETTLE, _LOG_FLUSH))
            held = evidence.held(await project.lb_log(at), at, evidence.addresses(victim))
            report.notes["drain_attempts"] = attempt
            report.notes["completed_by_draining_replica"] = len(held)
            if held:
                return
            report.event(run, "no request was on the replica at SIGTERM; once more")
        report.failures.append(f"no request was on the replica at SIGTERM in {attempt} tries")

    await _under_load(settings, report, action)
    report.notes.update(evidence.summary(await project.lb_log(wall0)))
    return report


SCENARIOS: dict[str, Callable[[Settings], Awaitable[Report]]] = {
    "steady": steady,
    "replica-loss": replica_loss,
    "rolling": rolling,
    "drain": drain,
}
