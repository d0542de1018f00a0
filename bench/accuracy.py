"""Accuracy against mpmath at 50 digits: the service's core beside PyTorch, row by row.

    /work/bench-venv/bin/python -m bench.accuracy [--rows 200] [--name accuracy]

For each regime (offsets around the exponential's limits, spreads, ties) and each
precision, the same seeded rows go through ``app.core.score_cross_entropy`` and through
``torch.nn.functional.cross_entropy`` / ``softmax`` (float32 or float64 tensors, one
thread). The error of each per-sample loss is relative to the exact loss; the error of
each probability that is a normal number is relative to it. The table gives the largest
and the median over the regime's rows, in units of the precision's eps, and the share of
rows where each is within the test suite's tolerance (64 eps, tests/reference.py).
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import numpy as np

from app.core import LossOptions, score_cross_entropy
from bench._timing import machine, table, write_results
from tests.reference import exact

REGIMES: dict[str, tuple[float, float]] = {  # (offset, spread)
    "ordinary": (0.0, 4.0),
    "confident": (0.0, 40.0),
    "below exp range": (-100.0, 3.0),
    "at float32 overflow": (88.0, 2.0),
    "at float64 overflow": (709.0, 2.0),
    "far out": (1e4, 30.0),
    "near ties": (5.0, 1e-6),
}
CLASSES = 10


def rows_of(regime: str, n: int, rng: np.random.Generator) -> np.ndarray:
    offset, spread = REGIMES[regime]
    return offset + spread * rng.uniform(-1, 1, (n, CLASSES))


def errors(got: np.ndarray, refs: list[Any], labels: np.ndarray, dt: Any) -> list[float]:
    eps = float(np.finfo(dt).eps)
    out = []
    for g, ref, y in zip(got, refs, labels, strict=True):
        want = float(ref.loss(int(y)))
        out.append(abs(float(g) - want) / max(want, float(np.finfo(dt).tiny)) / eps)
    return out


def prob_errors(got: np.ndarray, refs: list[Any], dt: Any) -> list[float]:
    eps, tiny = float(np.finfo(dt).eps), float(np.finfo(dt).tiny)
    out = []
    for row, ref in zip(got, refs, strict=True):
        worst = 0.0
        for k, p in enumerate(ref.probs):
            if p >= tiny:
                worst = max(worst, abs(float(row[k]) - float(p)) / float(p) / eps)
        out.append(worst)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200, help="rows per regime")
    parser.add_argument("--name", default="accuracy", help="results file name")
    args = parser.parse_args()
    try:
        import torch
        import torch.nn.functional as F  # noqa: N812

        torch.set_num_threads(1)
    except ImportError:
        torch = None
        print("torch not installed: the service alone")
    rng = np.random.default_rng(2026)
    results: list[dict[str, Any]] = []
    for regime in REGIMES:
        x64 = rows_of(regime, args.rows, rng)
        labels = rng.integers(0, CLASSES, args.rows)
        for dt in (np.float32, np.float64):
            x = x64.astype(dt)
            if not np.isfinite(x).all():
                continue
            refs = [exact(row) for row in x]
            ours = score_cross_entropy(
                x, labels, LossOptions(outputs=frozenset({"per_sample", "probs"}))
            )
            assert ours.probs is not None
            found = {
                "ours": (
                    errors(ours.per_sample, refs, labels, dt),
                    prob_errors(ours.probs, refs, dt),
                )
            }
            if torch is not None:
                t = torch.from_numpy(x)
                loss = F.cross_entropy(t, torch.from_numpy(labels), reduction="none").numpy()
                probs = F.softmax(t, dim=1).numpy()
                found["torch"] = (errors(loss, refs, labels, dt), prob_errors(probs, refs, dt))
            for who, (le, pe) in found.items():
                results.append(
                    {
                        "regime": regime,
                        "dtype": np.dtype(dt).name,
                        "who": who,
                        "loss_max_eps": max(le),
                        "loss_median_eps": statistics.median(le),
                        "loss_within_64eps": sum(e <= 64 for e in le) / len(le),
                        "probs_max_eps": max(pe),
                        "probs_within_64eps": sum(e <= 64 for e in pe) / len(pe),
                    }
                )
                print(regime, np.dtype(dt).name, who, f"{max(le):.3g}", f"{max(pe):.3g}")
    head = [
        "regime",
        "dtype",
        "who",
        "loss max/eps",
        "loss median/eps",
        "loss <= 64 eps",
        "probs max/eps",
        "probs <= 64 eps",
    ]
    body = [
        [
            r["regime"],
            r["dtype"],
            r["who"],
            f"{r['loss_max_eps']:.3g}",
            f"{r['loss_median_eps']:.3g}",
            f"{100 * r['loss_within_64eps']:.0f} %",
            f"{r['probs_max_eps']:.3g}",
            f"{100 * r['probs_within_64eps']:.0f} %",
        ]
        for r in results
    ]
    print(table(head, body))
    write_results(args.name, {"machine": machine(), "rows": args.rows, "results": results})


if __name__ == "__main__":
    main()
