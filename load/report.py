"""A scenario's outcome: table rows, a timeline, failures, and the evidence gathered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from load.checks import Outcome
from load.driver import LoadRun, Record
from load.stats import Summary, summarize

__all__ = ["Report"]

_MAX_FAILURES_LISTED = 20


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

    def event(self, run: LoadRun, what: str) -> None:
        """Note ``what`` on the timeline, at the run's clock."""
        self.events.append((run.now(), what))

    def add_run(self, run: LoadRun) -> None:
        """Table rows per payload kind (plus "all" for a mix) and the first failures."""
        by_kind: dict[str, list[Record]] = {}
        for record in run.records:
            by_kind.setdefault(record.kind, []).append(record)
        for kind, records in by_kind.items():
            self.rows.append(summarize(self.scenario, kind, records, run.elapsed))
        if len(by_kind) > 1:
            self.rows.append(summarize(self.scenario, "all", run.records, run.elapsed))
        bad = [r for r in run.records if r.outcome is not Outcome.OK]
        for record in bad[:_MAX_FAILURES_LISTED]:
            self.failures.append(
                f"t={record.start:.2f}s {record.kind}: {record.outcome.value}: {record.detail}"
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "passed": self.passed,
            "rows": [r.as_dict() for r in self.rows],
            "events": [{"t": round(t, 3), "event": what} for t, what in self.events],
            "failures": self.failures,
            "notes": self.notes,
        }
