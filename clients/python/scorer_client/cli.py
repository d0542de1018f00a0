"""The ``scorer`` command: ``score`` one batch, ``evaluate`` a dataset file of any size.

``scorer score --logits x.npy --labels y.npy`` prints the loss and diagnostics of one
batch. ``scorer evaluate data.parquet --loss binary-cross-entropy --report out.html``
reads predictions and labels in chunks (npy, npz, Parquet, Arrow, CSV), scores the
chunks concurrently, merges their aggregates exactly and prints the dataset's metrics;
the report is drawn here, from the merged metrics. The exit status is 0, 1 when the
service refused or could not be reached, 2 for unusable input or usage.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scorer_client import __version__
from scorer_client.errors import MissingDependency, ScoringAPIError, ScoringClientError
from scorer_client.evaluate import Evaluation
from scorer_client.files import (
    BATCH_BYTES,
    LABEL_NAMES,
    MAX_DEFAULT_ROWS,
    PREDICTION_NAMES,
    default_rows,
    is_number,
    open_dataset,
)
from scorer_client.results import LossResult, SoftmaxResult
from scorer_client.sync import ScoringClient

__all__ = ["evaluation_summary", "load_array", "main", "metric_options", "summary"]

LOSSES = ("cross-entropy", "binary-cross-entropy", "softmax")
EVALUATE_LOSSES = ("cross-entropy", "binary-cross-entropy")
DEFAULT_URL = "http://127.0.0.1:8000"
FORMATS = ".npy, .npz, .parquet, .arrow, .feather, .ipc, .csv"
MAX_ROWS = MAX_DEFAULT_ROWS
METRIC_NAMES = (
    "classification",
    "curves",
    "calibration",
    "brier",
    "loss_histogram",
    "top_k",
    "confusion",
    "per_class",
)
BINARY_METRICS = ("classification", "curves", "calibration", "brier")
MULTICLASS_METRICS = ("calibration", "brier", "top_k", "per_class", "classification")
DEFAULT_TOP_K = (1, 5)
REPORT_EXTRA = "pip install 'scorer-client[report]'"


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


def _service_options() -> argparse.ArgumentParser:
    """The options every command shares: where the service is, how long to wait, output."""
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_argument_group("service")
    where.add_argument(
        "--url",
        default=os.environ.get("SCORER_URL") or DEFAULT_URL,
        help=f"the service (default: $SCORER_URL, else {DEFAULT_URL})",
    )
    where.add_argument(
        "--api-key",
        default=os.environ.get("SCORER_API_KEY") or None,
        help="sent as Authorization: Bearer (default: $SCORER_API_KEY)",
    )
    where.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return common


def _loss_options() -> argparse.ArgumentParser:
    """The options of the loss both ``score`` and ``evaluate`` compute."""
    common = argparse.ArgumentParser(add_help=False)
    loss = common.add_argument_group("loss")
    loss.add_argument("--input-kind", choices=("logits", "log_probs", "probs"), default="logits")
    loss.add_argument("--ignore-index", type=int, help="labels to leave out")
    loss.add_argument("--label-smoothing", type=float, default=0.0)
    loss.add_argument("--temperature", type=float, default=1.0)
    loss.add_argument(
        "--precision",
        choices=("float32", "float64"),
        help="compute precision (score: float32 for float16/32 inputs, else float64;"
        " evaluate: float64)",
    )
    return common


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scorer", description="Score and evaluate predictions with a running scoring service."
    )
    parser.add_argument("--version", action="version", version=f"scorer-client {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    # Fresh parents for each command: subparsers share their parents' actions, so one
    # command's set_defaults would change the other's defaults.
    parents = [_service_options(), _loss_options()]
    score = commands.add_parser("score", parents=parents, help="score one batch: the loss")
    score.add_argument("--logits", required=True, help="predictions (.npy, .npz[:key], .csv)")
    score.add_argument("--labels", help="labels (class indices or probabilities)")
    score.add_argument("--loss", choices=LOSSES, default="cross-entropy")
    score.add_argument("--reduction", choices=("none", "sum", "mean"), default="mean")
    score.add_argument("--class-weights", help="one weight per class (file)")
    score.add_argument("--sample-weights", help="one weight per sample (file)")
    score.add_argument("--pos-weight", help="binary: a number, or a file of one per class")
    score.add_argument("--axis", type=int, default=-1)
    _evaluate_parser(commands)
    return parser


def _evaluate_parser(commands: Any) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        parents=[_service_options(), _loss_options()],
        help="exact dataset-level metrics of a file of any size",
        description="Read predictions and labels in chunks, score the chunks concurrently,"
        " merge their aggregates exactly, and print the dataset's metrics.",
    )
    evaluate.add_argument("file", help=f"predictions, and labels unless given apart ({FORMATS})")
    evaluate.add_argument("labels_file", nargs="?", help="labels, when not in FILE")
    evaluate.add_argument(
        "--loss",
        choices=EVALUATE_LOSSES,
        default="cross-entropy",
        help="cross-entropy: [N, C] predictions, class labels (the default);"
        " binary-cross-entropy: [N] scores or [N, C] multi-label, labels 0 or 1",
    )
    what = evaluate.add_argument_group("where the values are")
    what.add_argument(
        "--predictions-key", metavar="KEY", help=".npz: the predictions array (default: as columns)"
    )
    what.add_argument("--labels-key", metavar="KEY", help=".npz: the labels array")
    what.add_argument(
        "--predictions-column",
        metavar="NAME[,NAME...]",
        help="tables: a numeric or list column, or several comma-separated stacked as [N, C]"
        f" (default: the first of {', '.join(PREDICTION_NAMES)})",
    )
    what.add_argument(
        "--labels-column",
        metavar="NAME[,NAME...]",
        help=f"tables: as --predictions-column (default: {', '.join(LABEL_NAMES)})",
    )
    what.add_argument(
        "--no-header",
        dest="header",
        action="store_false",
        help="CSV: the first line is data, not column names (the columns are f0, f1, ...)",
    )
    asked = evaluate.add_argument_group("metrics")
    asked.add_argument(
        "--metrics",
        metavar="NAME,...",
        help=f"comma-separated, of {', '.join(METRIC_NAMES)}; top_k=1,5 (default: binary"
        f" {','.join(BINARY_METRICS)}; cross-entropy {','.join(MULTICLASS_METRICS)})",
    )
    asked.add_argument(
        "--threshold",
        type=float,
        metavar="T",
        help="binary classification: p > T (0.5); asks for classification",
    )
    asked.add_argument(
        "--curve-bins", type=int, metavar="N", help="curves' bins (1000); asks for curves"
    )
    asked.add_argument(
        "--calibration-bins",
        type=int,
        metavar="N",
        help="calibration's bins (15); asks for calibration",
    )
    run = evaluate.add_argument_group("how")
    run.add_argument(
        "--batch-rows",
        type=int,
        metavar="N",
        help=f"rows per request (default: about {BATCH_BYTES >> 20} MiB, at most {MAX_ROWS:,})",
    )
    run.add_argument(
        "--concurrency", type=int, default=4, metavar="K", help="requests in flight (4)"
    )
    run.add_argument(
        "--report", metavar="OUT.html", help="also write the HTML report here (needs matplotlib)"
    )
    # An evaluation is read against references (scikit-learn, earlier runs): the exact
    # numbers are worth float64's ~30% more compute on the service.
    evaluate.set_defaults(precision="float64")


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
                pos = float(pos) if is_number(pos) else load_array(pos, "pos_weight")
            return client.binary_cross_entropy(logits, labels, pos_weight=pos, **common)
        weights = _optional(args.class_weights, "class_weights")
        return client.cross_entropy(logits, labels, class_weights=weights, **common)


def _optional(spec: str | None, key: str) -> NDArray[Any] | None:
    return None if spec is None else load_array(spec, key)


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


def _table(row: dict[str, Any]) -> str:
    width = max(len(name) for name in row)
    lines = []
    for name, value in row.items():
        text = "-" if value is None else f"{value:.10g}" if isinstance(value, float) else value
        lines.append(f"{name:<{width}}  {text}")
    return "\n".join(lines)


def metric_options(
    text: str | None,
    loss: str,
    classes: int,
    *,
    threshold: float | None = None,
    curve_bins: int | None = None,
    calibration_bins: int | None = None,
) -> dict[str, Any]:
    """The ``metrics`` of every request, from ``--metrics`` (None: the loss's defaults).

    ``text`` is comma-separated names, ``top_k=1,5`` taking the integers after it.
    ``top_k`` without values, and the cross-entropy default, is 1 and 5 where there are
    more than 5 classes (top-k of k >= classes is 1 by definition). Setting an option
    asks for its metric: ``threshold`` for classification, ``curve_bins`` for curves,
    ``calibration_bins`` for calibration (the service does so for the bins only).

    Example:
        >>> metric_options("brier,top_k=1,3,per_class", "cross-entropy", 10)
        {'brier': True, 'top_k': [1, 3], 'per_class': True}
        >>> metric_options("curves", "binary-cross-entropy", 1, threshold=0.3)
        {'curves': True, 'classification': True, 'threshold': 0.3}
    """
    binary = loss == "binary-cross-entropy"
    default_k = [k for k in DEFAULT_TOP_K if k == 1 or k < classes]
    chosen: dict[str, Any] = {}
    if text is None:
        for name in BINARY_METRICS if binary else MULTICLASS_METRICS:
            chosen[name] = default_k if name == "top_k" else True
    else:
        last = ""
        for token in (part.strip() for part in text.split(",")):
            name, equals, value = token.partition("=")
            if last == "top_k" and not equals and token.isdigit():
                chosen["top_k"].append(int(token))
                continue
            if name not in METRIC_NAMES:
                raise ValueError(f"--metrics: unknown {token!r}; known: {', '.join(METRIC_NAMES)}")
            if name == "top_k":
                if equals and not value.isdigit():
                    raise ValueError(f"--metrics: top_k takes integers; got {value!r}")
                chosen[name] = [int(value)] if equals else list(default_k)
            elif equals:
                raise ValueError(f"--metrics: {name} takes no value; got {token!r}")
            else:
                chosen[name] = True
            last = name
    for metric, key, given in (
        ("classification", "threshold", threshold),
        ("curves", "curve_bins", curve_bins),
        ("calibration", "calibration_bins", calibration_bins),
    ):
        if given is not None:
            chosen[metric] = True
            chosen[key] = given
    return chosen


def _need(module: str, install: str, what: str) -> None:
    # Checked before any request: an hour of scoring should not end in an ImportError.
    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingDependency(f"{what} needs {module}: {install}") from None


def _evaluate(args: argparse.Namespace) -> Evaluation:
    if args.report is not None:
        _need("matplotlib", REPORT_EXTRA, "--report")
    if args.concurrency < 1 or (args.batch_rows is not None and args.batch_rows < 1):
        raise ValueError("--concurrency and --batch-rows must be at least 1")
    data = open_dataset(
        args.file,
        args.labels_file,
        predictions_key=args.predictions_key,
        labels_key=args.labels_key,
        predictions_column=args.predictions_column,
        labels_column=args.labels_column,
        header=args.header,
        loss=args.loss,
    )
    first, _ = data.first_row()
    metrics = metric_options(
        args.metrics,
        args.loss,
        int(first.shape[-1]) if first.ndim > 1 else 1,
        threshold=args.threshold,
        curve_bins=args.curve_bins,
        calibration_bins=args.calibration_bins,
    )
    rows = args.batch_rows or default_rows(data.row_bytes())
    with ScoringClient(args.url, timeout=args.timeout, api_key=args.api_key) as client:
        return client.evaluate(
            data.batches(rows),
            loss=args.loss,
            metrics=metrics,
            concurrency=args.concurrency,
            progress=True,
            input_kind=args.input_kind,
            ignore_index=args.ignore_index,
            label_smoothing=args.label_smoothing,
            temperature=args.temperature,
            precision=args.precision,
            # The aggregate is the same; a chunk that is all ignore_index is no error.
            reduction="sum",
            outputs=(),
        )


def evaluation_summary(evaluation: Evaluation) -> dict[str, Any]:
    """The headline numbers of an evaluation, flat, for the table.

    Areas come with their bounds: the exact value (scikit-learn's, from every score) is
    within ``bound`` of the binned one. A macro mean's bound is the mean of the bounds.
    """
    m = evaluation.metrics
    row: dict[str, Any] = {"task": m["task"], "loss": m["loss"], "count": m["count"]}
    row |= {"accuracy": m["accuracy"], "mean_confidence": m["mean_confidence"]}
    if "brier" in m:
        row["brier"] = m["brier"]
    calibration = m.get("calibration")
    if calibration is not None:
        row |= {name: calibration[name] for name in ("ece", "mce", "rms")}
        row["calibration_bins"] = calibration["bins"]
    for top in m.get("top_k") or ():
        row[f"top_{top['k']}_accuracy"] = top["accuracy"]
    classification = m.get("classification")
    if classification is not None:
        if m["task"] == "binary" and len(classification["f1"]) == 1:
            row |= {name: classification[name][0] for name in ("precision", "recall", "f1")}
        for mean in ("macro", "micro", "weighted"):
            row[f"{mean}_f1"] = classification[mean]["f1"]
    curves = m.get("curves")
    if curves is not None:
        for area in ("roc_auc", "average_precision"):
            row[f"macro_{area}"] = curves[f"macro_{area}"]
            bounds = [b for b in curves[f"{area}_bound"] if b is not None]
            row[f"macro_{area}_bound"] = math.fsum(bounds) / len(bounds) if bounds else None
        row["curve_bins"] = curves["bins"]
    per_class = m.get("per_class")
    if per_class is not None:
        known = [(a, c) for c, a in enumerate(per_class["accuracy"]) if a is not None]
        if known:
            accuracy, worst = min(known)
            row["worst_class"] = f"{worst} (accuracy {accuracy:.4g})"
    row |= {"rows": evaluation.rows, "batches": evaluation.batches}
    return row


def jsonable(value: Any) -> Any:
    """``value`` for :func:`json.dumps`: non-finite floats as "inf", "-inf", "nan" (as
    the service writes them), NumPy scalars and arrays as Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray | np.generic):
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _evaluation_output(args: argparse.Namespace, evaluation: Evaluation) -> str:
    if args.report is not None:
        from scorer_client.report import HTML, render

        Path(args.report).write_bytes(render(evaluation.metrics, HTML))
    if args.json:
        body = {**evaluation.metrics, "rows": evaluation.rows, "batches": evaluation.batches}
        return json.dumps(jsonable(body))
    row = evaluation_summary(evaluation)
    if args.report is not None:
        row["report"] = args.report
    return _table(row)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status is 0, 1 (the service said no) or 2 (usage)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "evaluate":
            text = _evaluation_output(args, _evaluate(args))
        else:
            result = _score(args)
            row = summary(result)
            text = json.dumps(jsonable(row)) if args.json else _table(row)
    except ScoringAPIError as exc:
        sys.stderr.write(f"error: {exc}\n")
        for item in exc.errors:
            where = ".".join(map(str, item.loc)) or "-"
            sys.stderr.write(f"  {where}: {item.message}\n")
        return 1
    except ScoringClientError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except (OSError, ValueError, MissingDependency) as exc:
        sys.stderr.write(f"scorer: {exc}\n")
        return 2
    sys.stdout.write(text + "\n")
    return 0
