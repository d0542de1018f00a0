"""The scenarios: steady load per payload kind, and load while replicas die or restart."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from load.checks import Outcome
from load.compose import Container, DockerError, LbEntry, Project
from load.driver import ENDPOINT, LoadConfig, LoadRun
from load.payloads import Payload
from load.stats import Summary, summarize

__all__ = ["SCENARIOS", "Report", "Settings"]

# Time for the load balancer to see a replica that came back (it re-resolves every second).
_SETTLE = 2.0
_MAX_FAILURES_LISTED = 20
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


@dataclass
class Report:
    """A scenario's results: table rows, a timeline, what went wrong, and evidence."""

    scenario: str
    rows: list[Summary] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures and all(r.errors == 0 and r.wrong == 0 for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "passed": self.passed,
            "rows": [r.as_dict() for r in self.rows],
            "events": [{"t": round(t, 3), "event": what} for t, what in self.events],
            "failures": self.failures,
            "notes": self.notes,
        }


def _collect(report: Report, run: LoadRun) -> None:
    """Table rows per payload kind (plus "all" for a mix) and the first failures."""
    by_kind: dict[str, list[Any]] = {}
    for record in run.records:
        by_kind.setdefault(record.kind, []).append(record)
    for kind, records in by_kind.items():
        report.rows.append(summarize(report.scenario, kind, records, run.elapsed))
    if len(by_kind) > 1:
        report.rows.append(summarize(report.scenario, "all", run.records, run.elapsed))
    bad = [r for r in run.records if r.outcome is not Outcome.OK]
    for record in bad[:_MAX_FAILURES_LISTED]:
        report.failures.append(
            f"t={record.start:.2f}s {record.kind}: {record.outcome.value}: {record.detail}"
        )


async def steady(settings: Settings) -> Report:
    """Each payload kind in turn, ``duration`` seconds each, at constant concurrency."""
    report = Report("steady")
    for kind, payloads in settings.payloads.items():
        run = LoadRun(settings.load, payloads)
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(settings.duration, stop.set)
        await run.run(stop)
        _collect(report, run)
        report.events.append((run.elapsed, f"{kind}: {len(run.records)} requests"))
    return report


Action = Callable[[LoadRun, Report], Awaitable[None]]


async def _under_load(settings: Settings, report: Report, action: Action) -> LoadRun:
    """Run the mixed load, do ``action`` meanwhile, stop at the later of the two."""
    payloads = [p for kind in settings.payloads.values() for p in kind]
    run = LoadRun(settings.load, payloads)
    stop = asyncio.Event()
    load = asyncio.create_task(run.run(stop))
    await asyncio.sleep(0)
    try:
        await asyncio.wait_for(action(run, report), timeout=settings.duration + 300)
    except (DockerError, TimeoutError) as exc:
        report.failures.append(f"{report.scenario}: {exc or 'timed out'}")
    await asyncio.sleep(max(0.0, settings.duration - run.now()))
    stop.set()
    await asyncio.wait_for(load, timeout=settings.load.request_timeout + 30)
    _collect(report, run)
    return run


async def _running(project: Project) -> list[Container]:
    replicas = [c for c in await project.containers() if c.running]
    if len(replicas) < 2:
        raise DockerError(
            f"project {project.name} has {len(replicas)} running api replica(s); "
            "a replica can be lost without failures only with 2 or more"
        )
    return replicas


def _event(run: LoadRun, report: Report, what: str) -> None:
    report.events.append((run.now(), what))


def _addr(container: Container) -> set[str]:
    return {f"{ip}:8000" for ip in container.ips}


def _scoring(entries: Sequence[LbEntry]) -> list[LbEntry]:
    return [e for e in entries if f" {ENDPOINT} " in e.request]


def _lb_notes(report: Report, entries: Sequence[LbEntry]) -> None:
    scoring = _scoring(entries)
    report.notes["lb_requests"] = len(scoring)
    report.notes["lb_retried"] = sum(len(e.upstreams) > 1 for e in scoring)
    report.notes["lb_by_replica"] = dict(Counter(e.upstreams[-1] for e in scoring))


async def replica_loss(settings: Settings) -> Report:
    """SIGKILL one replica under load, start it again: nothing fails, it serves again."""
    report = Report("replica-loss")
    project = settings.project
    wall0 = time.time()
    back: dict[str, float] = {}
    revived: list[Container] = []

    async def action(run: LoadRun, report: Report) -> None:
        victim = (await _running(project))[0]
        await asyncio.sleep(max(2.0, settings.duration * 0.2))
        _event(run, report, f"docker kill (SIGKILL) {victim.name}")
        await project.signal(victim.id, "KILL")
        await asyncio.sleep(max(3.0, settings.duration * 0.25))
        _event(run, report, f"docker start {victim.name}")
        await project.start(victim.id)
        revived.append(await project.wait_for(victim.id, "healthy", timeout=90))
        back["at"] = time.time()
        _event(run, report, f"{victim.name} healthy again")
        await asyncio.sleep(_SETTLE + 3.0)

    await _under_load(settings, report, action)
    await asyncio.sleep(1.5)  # nginx flushes its access log every second
    entries = await project.lb_log(wall0)
    _lb_notes(report, entries)
    if revived and "at" in back and _scoring(entries):
        served = [
            e
            for e in _scoring(entries)
            if e.start > back["at"] + _SETTLE and e.upstreams[-1] in _addr(revived[0])
        ]
        report.notes["served_by_revived_replica"] = len(served)
        if not served:
            report.failures.append(f"{revived[0].name} came back but nginx sent it nothing")
    return report


async def rolling(settings: Settings) -> Report:
    """Restart every replica, one at a time, under load (graceful stop, start, healthy)."""
    report = Report("rolling")
    project = settings.project
    wall0 = time.time()

    async def action(run: LoadRun, report: Report) -> None:
        await asyncio.sleep(2.0)
        for replica in await _running(project):
            _event(run, report, f"docker stop {replica.name}")
            await project.stop(replica.id, settings.grace)
            _event(run, report, f"docker start {replica.name}")
            await project.start(replica.id)
            await project.wait_for(replica.id, "healthy", timeout=90)
            _event(run, report, f"{replica.name} healthy again")
            await asyncio.sleep(_SETTLE)
        await asyncio.sleep(2.0)

    await _under_load(settings, report, action)
    await asyncio.sleep(1.5)
    _lb_notes(report, await project.lb_log(wall0))
    return report


def _held(entries: Sequence[LbEntry], at: float, addresses: set[str]) -> list[LbEntry]:
    """Requests answered by ``addresses`` alone (no retry) that spanned the time ``at``."""
    return [
        e
        for e in _scoring(entries)
        if len(e.upstreams) == 1
        and e.upstreams[0] in addresses
        and e.status == 200
        and e.start < at < e.end
    ]


async def drain(settings: Settings) -> Report:
    """SIGTERM a replica while it holds requests: every one completes, it exits cleanly.

    Should no request happen to be on the replica at that moment (nginx's log tells), the
    replica is started again and the SIGTERM repeated, up to three times.
    """
    report = Report("drain")
    project = settings.project
    wall0 = time.time()

    async def action(run: LoadRun, report: Report) -> None:
        await asyncio.sleep(max(2.0, settings.duration * 0.2))
        for attempt in range(1, _DRAIN_ATTEMPTS + 1):
            victim = (await _running(project))[0]
            at = time.time()
            _event(run, report, f"SIGTERM {victim.name} ({run.in_flight} requests in flight)")
            await project.signal(victim.id, "TERM")
            exited = await project.wait_for(victim.id, "exited", timeout=settings.grace + 10)
            took = time.time() - at
            report.notes["drain_exit_code"] = exited.exit_code
            report.notes["drain_seconds"] = round(took, 3)
            _event(run, report, f"{victim.name} exited with {exited.exit_code} after {took:.1f} s")
            # uvicorn re-raises the SIGTERM it handled once it has shut down: 143 = 128 + 15.
            if exited.exit_code not in _CLEAN_EXIT:
                report.failures.append(f"{victim.name} exited with {exited.exit_code}")
            await project.start(victim.id)
            await project.wait_for(victim.id, "healthy", timeout=90)
            _event(run, report, f"{victim.name} healthy again")
            await asyncio.sleep(_SETTLE)  # also lets nginx flush its access log
            held = _held(await project.lb_log(at), at, _addr(victim))
            report.notes["drain_attempts"] = attempt
            report.notes["completed_by_draining_replica"] = len(held)
            if held:
                return
            _event(run, report, "no request was on the replica at SIGTERM; once more")
        report.failures.append(f"no request was on the replica at SIGTERM in {attempt} tries")

    await _under_load(settings, report, action)
    await asyncio.sleep(1.5)
    _lb_notes(report, await project.lb_log(wall0))
    return report


SCENARIOS: dict[str, Callable[[Settings], Awaitable[Report]]] = {
    "steady": steady,
    "replica-loss": replica_loss,
    "rolling": rolling,
    "drain": drain,
}
