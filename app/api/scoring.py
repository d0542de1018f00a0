"""The /v1 scoring routes: what each computes, and the plain ASGI apps that serve them.

Each route is an :class:`Endpoint`: its options model validates the non-array fields,
and its function turns the options and arrays into a call to the core and the core's
result into the response tree. The routes are plain ASGI apps, not FastAPI routes,
because FastAPI's route machinery costs more than the request's own work
(bench/README.md, design decisions); they keep the middleware (metrics, log, auth,
admission) and the error handlers. FastAPI documents only its own routes, so
:data:`OPERATIONS` also feeds the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import InvalidFields, handler_for
from app.api.metric_schemas import MetricsOptions
from app.api.openapi import post_operation
from app.api.pipeline import serve_body
from app.api.schemas import (
    PREDICTION_FIELDS,
    BinaryCrossEntropyOptions,
    BinaryCrossEntropyRequest,
    CrossEntropyOptions,
    CrossEntropyRequest,
    LossResponse,
    SoftmaxOptions,
    SoftmaxRequest,
    SoftmaxResponse,
)
from app.codecs import DecodedArray, DecodedBody, Tensor
from app.core import (
    Diagnostics,
    LossOptions,
    LossResult,
    score_binary_cross_entropy,
    score_cross_entropy,
    score_softmax,
)
from app.core import SoftmaxOptions as CoreSoftmaxOptions
from app.core.metrics import (
    Evaluation,
    MetricOptions,
    evaluate_binary_cross_entropy,
    evaluate_cross_entropy,
    to_wire,
)
from app.core.results import PER_SAMPLE_FIELDS

__all__ = [
    "BINARY_CROSS_ENTROPY",
    "CROSS_ENTROPY",
    "OPERATIONS",
    "SOFTMAX",
    "Endpoint",
    "Lane",
    "Operation",
    "ScoringLane",
    "core_metric_options",
    "loss_inputs",
    "openapi_models",
    "openapi_paths",
    "routes",
]

_METRIC_PARTS = (
    "calibration",
    "brier",
    "top_k",
    "confusion",
    "per_class",
    "loss_histogram",
    "sequences",
    "classification",
    "curves",
)


@dataclass(frozen=True)
class Endpoint:
    """A scoring route: its options model, its array fields and how it computes."""

    options_model: type[BaseModel]
    array_fields: frozenset[str]
    run: Callable[[Any, dict[str, DecodedArray], int], dict[str, Any]]

    def compute(self, decoded: DecodedBody, threads: int = 1) -> dict[str, Any]:
        """Validate the options and run the core: the response tree, not yet encoded.

        ``threads``: how many threads a large batch may use (``compute_threads``).
        """
        return self.run(self._options(decoded), decoded.arrays, threads)

    def _options(self, decoded: DecodedBody) -> BaseModel:
        # A null array field means "absent"; anything else unknown is an error.
        values = {
            k: v for k, v in decoded.options.items() if not (k in self.array_fields and v is None)
        }
        try:
            return self.options_model.model_validate(values)
        except ValidationError as exc:
            raise InvalidFields.from_pydantic(exc) from exc


def _predictions(arrays: dict[str, DecodedArray], allowed: tuple[str, ...]) -> tuple[str, Any]:
    given = [name for name in allowed if name in arrays]
    if len(given) != 1:
        which = ", ".join(allowed)
        got = f"got {', '.join(given)}" if given else "got none"
        loc = (given[1],) if len(given) > 1 else (allowed[0],)
        raise InvalidFields([(loc, f"exactly one of {which} is required; {got}", "missing")])
    return given[0], arrays[given[0]]


def _required(arrays: dict[str, DecodedArray], name: str) -> np.ndarray[Any, Any]:
    if name not in arrays:
        raise InvalidFields([((name,), f"{name} is required", "missing")])
    return arrays[name].array


def _optional(arrays: dict[str, DecodedArray], name: str) -> np.ndarray[Any, Any] | None:
    return arrays[name].array if name in arrays else None


def _wrap(array: np.ndarray[Any, Any] | None, tensor: bool) -> Any:
    if array is None:
        return None
    return Tensor(array) if tensor else array


def diagnostics_body(diag: Diagnostics | None, tensor: bool) -> dict[str, Any] | None:
    """The diagnostics object of a response."""
    if diag is None:
        return None
    body: dict[str, Any] = {
        "count": diag.count,
        "accuracy": diag.accuracy,
        "mean_confidence": diag.mean_confidence,
        "mean_entropy": diag.mean_entropy,
        "mean_true_class_prob": diag.mean_true_class_prob,
        "numerical": {
            "max_abs_logit": diag.numerical.max_abs_logit,
            "overflow_rows": diag.numerical.overflow_rows,
            "underflow_rows": diag.numerical.underflow_rows,
            "zero_probs": diag.numerical.zero_probs,
        },
    }
    if diag.per_sample is not None:
        ps = diag.per_sample
        body["per_sample"] = {name: _wrap(getattr(ps, name), tensor) for name in PER_SAMPLE_FIELDS}
    return body


def _loss_body(
    result: LossResult, outputs: Sequence[str], pred: DecodedArray, labels: np.ndarray[Any, Any]
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "loss": result.loss,
        "reduction": result.reduction,
        "loss_sum": result.loss_sum,
        "total_weight": result.total_weight,
        "label_kind": result.label_kind,
        "precision": result.precision,
        "shapes": {
            "predictions": list(pred.array.shape),
            "labels": list(labels.shape),
            "per_sample": list(result.per_sample.shape),
        },
    }
    arrays = {"per_sample": result.per_sample, "probs": result.probs, "log_probs": result.log_probs}
    for name in outputs:
        body[name] = _wrap(arrays[name], pred.tensor)
    body["diagnostics"] = diagnostics_body(result.diagnostics, pred.tensor)
    return body


def _core_loss_options(
    options: Any, arrays: dict[str, DecodedArray], kind: str, threads: int = 1
) -> LossOptions:
    return LossOptions(
        reduction=options.reduction,
        class_weights=_optional(arrays, "class_weights"),
        sample_weights=_optional(arrays, "sample_weights"),
        pos_weight=_optional(arrays, "pos_weight"),
        ignore_index=options.ignore_index,
        label_smoothing=options.label_smoothing,
        temperature=options.temperature,
        axis=options.axis,
        input_kind=kind,  # type: ignore[arg-type]
        precision=options.precision,
        outputs=frozenset(options.outputs),
        diagnostics=options.diagnostics,
        per_sample_diagnostics=options.per_sample_diagnostics,
        threads=threads,
    )


def loss_inputs(
    options: CrossEntropyOptions, arrays: dict[str, DecodedArray], threads: int = 1
) -> tuple[DecodedArray, np.ndarray[Any, Any], LossOptions]:
    """The predictions, labels and core options of a cross-entropy request."""
    kind, pred = _predictions(arrays, PREDICTION_FIELDS)
    return pred, _required(arrays, "labels"), _core_loss_options(options, arrays, kind, threads)


def _run_cross_entropy(
    options: CrossEntropyOptions, arrays: dict[str, DecodedArray], threads: int
) -> Any:
    pred, labels, core_options = loss_inputs(options, arrays, threads)
    core = (score_cross_entropy, evaluate_cross_entropy)
    return _run_loss(options, pred, labels, core_options, core)


def _run_binary(
    options: BinaryCrossEntropyOptions, arrays: dict[str, DecodedArray], threads: int
) -> Any:
    kind, pred = _predictions(arrays, PREDICTION_FIELDS)
    labels = _required(arrays, "labels")
    core_options = _core_loss_options(options, arrays, kind, threads)
    core = (score_binary_cross_entropy, evaluate_binary_cross_entropy)
    return _run_loss(options, pred, labels, core_options, core)


def _run_loss(
    options: CrossEntropyOptions | BinaryCrossEntropyOptions,
    pred: DecodedArray,
    labels: np.ndarray[Any, Any],
    core_options: LossOptions,
    core: tuple[Callable[..., LossResult], Callable[..., Evaluation]],
) -> dict[str, Any]:
    """The loss body from ``core``, the core's loss and its evaluation with metrics;
    with ``metrics``, the evaluation's (its own, slower path)."""
    score, evaluate = core
    if options.metrics is None:
        return _loss_body(score(pred.array, labels, core_options), options.outputs, pred, labels)
    metrics = core_metric_options(options.metrics)
    evaluation = evaluate(pred.array, labels, core_options, metrics)
    body = _loss_body(evaluation.result, options.outputs, pred, labels)
    return _add_metrics(body, evaluation, options.metrics, pred.tensor)


def _run_softmax(options: SoftmaxOptions, arrays: dict[str, DecodedArray], threads: int) -> Any:
    pred = arrays.get("logits")
    if pred is None:
        raise InvalidFields([(("logits",), "logits is required", "missing")])
    result = score_softmax(
        pred.array,
        CoreSoftmaxOptions(
            temperature=options.temperature,
            axis=options.axis,
            precision=options.precision,
            outputs=frozenset(options.outputs),
            diagnostics=options.diagnostics,
        ),
    )
    produced = {"probs": result.probs, "log_probs": result.log_probs, "logsumexp": result.logsumexp}
    per_sample_shape = list(pred.array.shape)
    if per_sample_shape:
        del per_sample_shape[options.axis % len(per_sample_shape)]
    body: dict[str, Any] = {
        "precision": result.precision,
        "shapes": {"predictions": list(pred.array.shape), "per_sample": per_sample_shape},
    }
    for name in options.outputs:
        body[name] = _wrap(produced[name], pred.tensor)
    body["diagnostics"] = diagnostics_body(result.diagnostics, pred.tensor)
    return body


def core_metric_options(m: MetricsOptions) -> MetricOptions:
    """The core's options; setting ``calibration_bins`` (``curve_bins``) asks for it."""
    calibrate = m.calibration or "calibration_bins" in m.model_fields_set
    curves = m.curves or "curve_bins" in m.model_fields_set
    return MetricOptions(
        calibration_bins=m.calibration_bins if calibrate else None,
        brier=m.brier,
        top_k=tuple(m.top_k),
        confusion=m.confusion,
        confusion_max_classes=m.confusion_max_classes,
        per_class=m.per_class,
        sequences=m.sequences,
        loss_histogram=m.loss_histogram,
        classification=m.classification,
        threshold=m.threshold,
        curve_bins=m.curve_bins if curves else None,
    )


def _add_metrics(
    body: dict[str, Any], evaluation: Evaluation, m: MetricsOptions, tensor: bool
) -> dict[str, Any]:
    """Put the requested metrics into ``body["diagnostics"]`` and, if asked, the aggregate."""
    diagnostics = body.get("diagnostics")
    if diagnostics is not None:
        found = evaluation.metrics
        diagnostics.update({k: found[k] for k in _METRIC_PARTS if k in found})
        seq = evaluation.sequences
        if seq is not None:
            wrap = Tensor if tensor else (lambda a: a)
            diagnostics["sequences"]["per_sequence"] = {
                "tokens": wrap(seq.tokens),
                "nll": wrap(seq.nll),
                "perplexity": wrap(seq.perplexity),
            }
    if m.aggregate:
        body["aggregate"] = to_wire(evaluation.aggregate)
    return body


CROSS_ENTROPY = Endpoint(
    CrossEntropyOptions,
    frozenset({*PREDICTION_FIELDS, "labels", "class_weights", "sample_weights"}),
    _run_cross_entropy,
)
BINARY_CROSS_ENTROPY = Endpoint(
    BinaryCrossEntropyOptions,
    frozenset({*PREDICTION_FIELDS, "labels", "pos_weight", "sample_weights"}),
    _run_binary,
)
SOFTMAX = Endpoint(SoftmaxOptions, frozenset({"logits"}), _run_softmax)


@dataclass(frozen=True)
class Operation:
    """One scoring route: where it is, what it runs, how the OpenAPI document shows it."""

    path: str
    endpoint: Endpoint
    operation_id: str
    summary: str
    description: str
    request_model: type[BaseModel]
    response_model: type[BaseModel]


OPERATIONS = (
    Operation(
        "/v1/cross-entropy",
        CROSS_ENTROPY,
        "crossEntropy",
        "Softmax cross-entropy",
        "Softmax cross-entropy of logits (or log-probabilities, or probabilities) and labels.",
        CrossEntropyRequest,
        LossResponse,
    ),
    Operation(
        "/v1/binary-cross-entropy",
        BINARY_CROSS_ENTROPY,
        "binaryCrossEntropy",
        "Sigmoid (binary, multi-label) cross-entropy",
        "Sigmoid cross-entropy of logits and targets in [0, 1], element by element.",
        BinaryCrossEntropyRequest,
        LossResponse,
    ),
    Operation(
        "/v1/softmax",
        SOFTMAX,
        "softmax",
        "Softmax, log-softmax and logsumexp",
        "Probabilities, log-probabilities and logsumexp of logits over the class axis.",
        SoftmaxRequest,
        SoftmaxResponse,
    ),
)


class ScoringRoute:
    """The ASGI app of one operation: 200 with the encoded result, or raise for a handler."""

    def __init__(self, operation: Operation) -> None:
        self.endpoint = operation.endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self.endpoint
        answer = await serve_body(scope, receive, endpoint.array_fields, endpoint.compute)
        await answer.send(send)


# Finds the route and app of a POST path the lane serves besides /v1's, or None.
Lane = Callable[[str], tuple[BaseRoute, ASGIApp] | None]


class ScoringLane:
    """The innermost middleware: POSTs to a scoring path go straight to their route.

    Starlette's exception middleware and router cost a small request more than it is
    worth (a Request per call, a send wrapper, a regex match per route tried, the child
    scope; bench/README.md, design decisions). Everything outside this layer still
    runs: metrics, access log, CORS, auth, admission, the server-error handler. Errors
    the status table knows are answered by the same handlers the exception middleware
    would call; anything else propagates to the server-error handler (500, logged).
    Other methods and paths go on to the router, which answers 405 and 404. ``more``
    finds the other paths the lane serves (/v2 inference, whose paths carry the model).
    """

    def __init__(self, app: ASGIApp, more: Lane | None = None) -> None:
        self.app = app
        self.routes: dict[str, tuple[BaseRoute, ASGIApp]] = {
            route.path: (route, route.app) for route in routes()
        }
        self.more = more

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = None
        if scope["type"] == "http" and scope["method"] == "POST":
            path, root = scope["path"], scope.get("root_path")
            if root and path.startswith(root):  # as the router matches: below root_path
                path = path[len(root) :]
            found = self.routes.get(path)
            if found is None and self.more is not None:
                found = self.more(path)
        if found is None:
            await self.app(scope, receive, send)
            return
        route, target = found
        scope["route"] = route  # the router's record: the metrics and log label
        try:
            await target(scope, receive, send)
        except Exception as exc:
            handler = handler_for(exc)  # the route raises before it sends anything
            if handler is None:
                raise
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)


def routes() -> list[Route]:
    """One POST route per operation (other methods get 405 from the router)."""
    return [
        Route(op.path, ScoringRoute(op), methods=["POST"], name=op.operation_id)
        for op in OPERATIONS
    ]


def openapi_paths() -> dict[str, dict[str, Any]]:
    """The path items of the scoring routes, as FastAPI would have generated them."""
    return {
        op.path: {
            "post": post_operation(
                op.operation_id,
                op.summary,
                op.description,
                ["scoring"],
                op.request_model,
                op.response_model,
            )
        }
        for op in OPERATIONS
    }


def openapi_models() -> list[type[BaseModel]]:
    """The models the scoring routes' path items refer to."""
    return [model for op in OPERATIONS for model in (op.request_model, op.response_model)]
