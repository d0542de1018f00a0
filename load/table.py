"""``python -m load.table RESULTS.json``: one Markdown table of every scenario in a run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from load.stats import Summary, markdown_table

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    result = json.loads(Path(args[0]).read_text())
    rows = [Summary(**row) for scenario in result["scenarios"] for row in scenario["rows"]]
    machine = result["machine"]
    print(markdown_table(rows))
    print(
        f"\n{result['date']}: {machine['cpu']}, {machine['cores']} cores, "
        f"{machine['memory_gib']} GiB; {result['replicas']} replicas; "
        f"concurrency {result['config']['concurrency']}, "
        f"{result['config']['duration']:g} s per run; "
        f"load average {machine['load_average_before']} before the run"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
