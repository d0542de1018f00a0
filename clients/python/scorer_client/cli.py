"""``scorer score --logits x.npy --labels y.npy``: score files with a running service."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scorer_client.errors import ScoringAPIError, ScoringClientError
from scorer_client.results import LossResult, SoftmaxResult
from scorer_client.sync import ScoringClient

__all__ = ["load_array", "main"]

LOSSES = ("cross-entropy", "binary-cross-entropy", "softmax")


def load_array(spec: str, default_key: str) -> NDArray[Any]:
    """``x.npy``, ``x.csv``, ``x.npz`` (its only array, or ``default_key``) or ``x.npz:key``."""
    path, _, key = spec.partition(":") if ".npz:" in spec else (spec, "", "")
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        return np.asarray(np.load(path, allow_pickle=False))
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            chosen = key or (names[0] if len(names) == 1 else default_key)
            if chosen not in names:
                raise ValueError(f"{path} holds {', '.join(names)}; name one as {path}:NAME")
            return np.asarray(archive[chosen])
    if suffix == ".csv":
        values = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=1)
        if values.size and np.all(values == np.round(values)) and default_key == "labels":
            return values.astype(np.int64)  # class indices; the server tells them apart by shape
        return values
    raise ValueError(f"{spec}: expected a .npy, .npz or .csv file")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scorer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser("score", help="score predictions against labels")
    score.add_argument("--logits", required=True, help="predictions (.npy, .npz[:key], .csv)")
    score.add_argument("--labels", help="labels (class indices or probabilities)")
    score.add_argument("--url", default=os.environ.get("SCORER_URL", "http://127.0.0.1:8000"))
    score.add_argument("--loss", choices=LOSSES, default="cross-entropy")
    score.add_argument("--input-kind", choices=("logits", "log_probs", "probs"), default="logits")
    score.add_argument("--reduction", choices=("none", "sum", "mean"), default="mean")
    score.add_argument("--class-weights", help="one weight per class (file)")
    score.add_argument("--sample-weights", help="one weight per sample (file)")
    score.add_argument("--pos-weight", help="binary: a number, or a file of one per class")
    score.add_argument("--ignore-index", type=int)
    score.add_argument("--label-smoothing", type=float, default=0.0)
    score.add_argument("--temperature", type=float, default=1.0)
    score.add_argument("--axis", type=int, default=-1)
    score.add_argument("--precision", choices=("float32", "float64"))
    score.add_argument("--timeout", type=float, default=60.0)
    score.add_argument("--api-key", default=os.environ.get("SCORER_API_KEY"))
    score.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def _score(args: argparse.Namespace) -> LossResult | SoftmaxResult:
    logits = load_array(args.logits, args.input_kind)
    with ScoringClient(args.url, timeout=args.timeout, api_key=args.api_key) as client:
        common: dict[str, Any] = {
            "temperature": args.temperature,
            "axis": args.axis,
            "precision": args.precision,
        }
        if args.loss == "softmax":
            return client.softmax(logits, outputs=(), **common)
        if args.labels is None:
            raise ValueError(f"--labels is required for {args.loss}")
        labels = load_array(args.labels, "labels")
        common |= {
            "input_kind": args.input_kind,
            "reduction": args.reduction,
            "ignore_index": args.ignore_index,
            "label_smoothing": args.label_smoothing,
            "sample_weights": _optional(args.sample_weights, "sample_weights"),
            "outputs": (),
        }
        if args.loss == "binary-cross-entropy":
            pos: Any = args.pos_weight
            if pos is not None:
                pos = float(pos) if _is_number(pos) else load_array(pos, "pos_weight")
            return client.binary_cross_entropy(logits, labels, pos_weight=pos, **common)
        weights = _optional(args.class_weights, "class_weights")
        return client.cross_entropy(logits, labels, class_weights=weights, **common)


def _optional(spec: str | None, key: str) -> NDArray[Any] | None:
    return None if spec is None else load_array(spec, key)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def summary(result: LossResult | SoftmaxResult) -> dict[str, Any]:
    """The scalars of a result, flat: loss, its parts, the diagnostics."""
    row: dict[str, Any] = {}
    if isinstance(result, LossResult):
        row |= {
            "loss": result.loss,
            "reduction": result.reduction,
            "loss_sum": result.loss_sum,
            "total_weight": result.total_weight,
            "label_kind": result.label_kind,
        }
    row["precision"] = result.precision
    diag = result.diagnostics
    if diag is not None:
        for name in ("count", "accuracy", "mean_confidence", "mean_entropy"):
            row[name] = getattr(diag, name)
        if isinstance(result, LossResult):
            row["mean_true_class_prob"] = diag.mean_true_class_prob
        for name in ("max_abs_logit", "overflow_rows", "underflow_rows", "zero_probs"):
            row[name] = getattr(diag, name)
    row["requests"] = result.chunks
    return row


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _table(row: dict[str, Any]) -> str:
    width = max(len(name) for name in row)
    lines = []
    for name, value in row.items():
        text = "-" if value is None else f"{value:.10g}" if isinstance(value, float) else value
        lines.append(f"{name:<{width}}  {text}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status is 0, 1 (the service said no) or 2 (usage)."""
    args = _parser().parse_args(argv)
    try:
        result = _score(args)
    except ScoringAPIError as exc:
        sys.stderr.write(f"error: {exc}\n")
        for item in exc.errors:
            where = ".".join(map(str, item.loc)) or "-"
            sys.stderr.write(f"  {where}: {item.message}\n")
        return 1
    except ScoringClientError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"scorer: {exc}\n")
        return 2
    row = summary(result)
    if args.json:
        sys.stdout.write(json.dumps({k: _json_value(v) for k, v in row.items()}) + "\n")
    else:
        sys.stdout.write(_table(row) + "\n")
    return 0
