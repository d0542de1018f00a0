"""The scoring methods, written once for the blocking and the asyncio client."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Generic, Literal, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from scorer_client._jobs import Job, goes_with_rows
from scorer_client._wire import prepare

__all__ = ["Calls"]

LossT = TypeVar("LossT")
SoftmaxT = TypeVar("SoftmaxT")
InputKind = Literal["logits", "log_probs", "probs"]
Reduction = Literal["none", "sum", "mean"]
Precision = Literal["float32", "float64"]


def _options(metrics: Mapping[str, Any] | None = None, **values: Any) -> dict[str, Any]:
    # Only what differs from the server's defaults travels.
    defaults = {"temperature": 1.0, "axis": -1, "label_smoothing": 0.0, "diagnostics": True}
    defaults["per_sample_diagnostics"] = False
    options = {k: v for k, v in values.items() if v is not None and defaults.get(k, ...) != v}
    if metrics is not None:
        # The aggregate always: a batch cut into several requests merges exactly by it.
        options["metrics"] = {**metrics, "aggregate": True}
    return options


class Calls(Generic[LossT, SoftmaxT]):
    """``cross_entropy``, ``binary_cross_entropy`` and ``softmax`` over ``_run``."""

    def _run_loss(self, job: Job) -> LossT:
        raise NotImplementedError

    def _run_softmax(self, job: Job) -> SoftmaxT:
        raise NotImplementedError

    def cross_entropy(
        self,
        logits: ArrayLike,
        labels: ArrayLike,
        *,
        input_kind: InputKind = "logits",
        reduction: Reduction = "mean",
        class_weights: ArrayLike | None = None,
        sample_weights: ArrayLike | None = None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        temperature: float = 1.0,
        axis: int = -1,
        precision: Precision | None = None,
        outputs: Sequence[str] = ("per_sample",),
        diagnostics: bool = True,
        per_sample_diagnostics: bool = False,
        metrics: Mapping[str, Any] | None = None,
    ) -> LossT:
        """Softmax cross-entropy (POST /v1/cross-entropy); ``logits`` may be any float dtype.

        ``input_kind`` says whether ``logits`` holds logits, log-probabilities or
        probabilities. Labels are class indices or probabilities, as the server has them.
        ``metrics`` as the route takes it (``{"calibration": True, "top_k": [1, 5]}``):
        the result's ``metrics`` are then the batch's, exact however many requests it took.
        """
        predictions = prepare(logits)
        options = _options(
            metrics,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            temperature=temperature,
            axis=axis,
            precision=precision,
            outputs=list(outputs),
            diagnostics=diagnostics,
            per_sample_diagnostics=per_sample_diagnostics,
        )
        per_sample_ndim = max(predictions.ndim - 1, 0)
        split = {input_kind: predictions, "labels": prepare(labels)}
        whole = {} if class_weights is None else {"class_weights": prepare(class_weights)}
        _place_sample_weights(sample_weights, per_sample_ndim, predictions, split, whole)
        job = Job("/v1/cross-entropy", split, whole, options, reduction=reduction)
        return self._run_loss(job)

    def binary_cross_entropy(
        self,
        logits: ArrayLike,
        labels: ArrayLike,
        *,
        input_kind: InputKind = "logits",
        reduction: Reduction = "mean",
        pos_weight: ArrayLike | float | None = None,
        sample_weights: ArrayLike | None = None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        temperature: float = 1.0,
        axis: int = -1,
        precision: Precision | None = None,
        outputs: Sequence[str] = ("per_sample",),
        diagnostics: bool = True,
        per_sample_diagnostics: bool = False,
        metrics: Mapping[str, Any] | None = None,
    ) -> LossT:
        """Sigmoid cross-entropy (POST /v1/binary-cross-entropy), element by element.

        ``metrics``: as for :meth:`cross_entropy` (``classification``, ``curves``, ...).
        """
        predictions = prepare(logits)
        options = _options(
            metrics,
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            temperature=temperature,
            axis=axis,
            precision=precision,
            outputs=list(outputs),
            diagnostics=diagnostics,
            per_sample_diagnostics=per_sample_diagnostics,
        )
        split = {input_kind: predictions, "labels": prepare(labels)}
        whole: dict[str, Any] = {}
        if isinstance(pos_weight, int | float):
            options["pos_weight"] = float(pos_weight)
        elif pos_weight is not None:
            whole["pos_weight"] = prepare(pos_weight)
        _place_sample_weights(sample_weights, predictions.ndim, predictions, split, whole)
        job = Job(
            "/v1/binary-cross-entropy", split, whole, options, reduction=reduction, elementwise=True
        )
        return self._run_loss(job)

    def softmax(
        self,
        logits: ArrayLike,
        *,
        temperature: float = 1.0,
        axis: int = -1,
        precision: Precision | None = None,
        outputs: Sequence[str] = ("probs",),
        diagnostics: bool = True,
    ) -> SoftmaxT:
        """Probabilities, log-probabilities and logsumexp (POST /v1/softmax)."""
        options = _options(
            temperature=temperature,
            axis=axis,
            precision=precision,
            outputs=list(outputs),
            diagnostics=diagnostics,
        )
        return self._run_softmax(Job("/v1/softmax", {"logits": prepare(logits)}, {}, options))


def _place_sample_weights(
    weights: ArrayLike | None,
    per_sample_ndim: int,
    predictions: np.ndarray[Any, Any],
    split: dict[str, Any],
    whole: dict[str, Any],
) -> None:
    if weights is None:
        return
    array = prepare(weights)
    rows = predictions.shape[0] if predictions.ndim else 1
    (split if goes_with_rows(array, per_sample_ndim, rows) else whole)["sample_weights"] = array
