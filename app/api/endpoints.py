"""What each scoring route does between the codec and the core, as plain functions.

Everything here runs in a worker thread: decoding, validation, the NumPy core and
encoding are all CPU work that must stay off the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from app.api.errors import OptionsInvalid
from app.api.metrics import add_metrics, evaluate
from app.api.schemas import BinaryCrossEntropyOptions, CrossEntropyOptions, SoftmaxOptions
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
from app.core.results import PER_SAMPLE_FIELDS

__all__ = ["BINARY_CROSS_ENTROPY", "CROSS_ENTROPY", "SOFTMAX", "Endpoint"]

PREDICTION_FIELDS = ("logits", "log_probs", "probs")


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
            raise OptionsInvalid.from_pydantic(exc) from exc


def _predictions(arrays: dict[str, DecodedArray], allowed: tuple[str, ...]) -> tuple[str, Any]:
    given = [name for name in allowed if name in arrays]
    if len(given) != 1:
        which = ", ".join(allowed)
        got = f"got {', '.join(given)}" if given else "got none"
        loc = (given[1],) if len(given) > 1 else (allowed[0],)
        raise OptionsInvalid([(loc, f"exactly one of {which} is required; {got}", "missing")])
    return given[0], arrays[given[0]]


def _required(arrays: dict[str, DecodedArray], name: str) -> np.ndarray[Any, Any]:
    if name not in arrays:
        raise OptionsInvalid([((name,), f"{name} is required", "missing")])
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
    if options.metrics is not None:  # evaluation metrics: their own, slower path
        evaluation = evaluate(pred.array, labels, core_options, options.metrics)
        body = _loss_body(evaluation.result, options.outputs, pred, labels)
        return add_metrics(body, evaluation, options.metrics, pred.tensor)
    result = score_cross_entropy(pred.array, labels, core_options)
    return _loss_body(result, options.outputs, pred, labels)


def _run_binary(
    options: BinaryCrossEntropyOptions, arrays: dict[str, DecodedArray], threads: int
) -> Any:
    kind, pred = _predictions(arrays, PREDICTION_FIELDS)
    labels = _required(arrays, "labels")
    result = score_binary_cross_entropy(
        pred.array, labels, _core_loss_options(options, arrays, kind)
    )
    return _loss_body(result, options.outputs, pred, labels)


def _run_softmax(options: SoftmaxOptions, arrays: dict[str, DecodedArray], threads: int) -> Any:
    pred = arrays.get("logits")
    if pred is None:
        raise OptionsInvalid([(("logits",), "logits is required", "missing")])
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
