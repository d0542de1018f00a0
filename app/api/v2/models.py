"""The three models of the Open Inference Protocol front door, over the /v1 endpoints.

A model maps protocol inputs, parameters and requested outputs onto the /v1 options
and arrays, runs the same :class:`~app.api.scoring.Endpoint`, and picks the
requested outputs out of the /v1 response tree: one core, two front doors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.exceptions import HTTPException

from app.api.errors import InvalidFields
from app.api.scoring import BINARY_CROSS_ENTROPY, CROSS_ENTROPY, SOFTMAX, Endpoint
from app.codecs import DecodedArray, DecodedBody
from app.core.results import PER_SAMPLE_FIELDS

__all__ = ["MODELS", "VERSION", "Model", "TensorSpec", "find_model"]

VERSION = "1"

_LOSS_PARAMETERS = ("reduction", "ignore_index", "label_smoothing", "temperature", "axis")
# Parameters tritonclient and perf_analyzer may send, which mean nothing to a scorer.
_IGNORED_PARAMETERS = frozenset(
    {"binary_data_output", "sequence_id", "sequence_start", "sequence_end", "priority", "timeout"}
)
_BATCH = ("count", "accuracy", "mean_confidence", "mean_entropy", "mean_true_class_prob")
_NUMERICAL = ("max_abs_logit", "overflow_rows", "underflow_rows", "zero_probs")
# Where each output lives in the /v1 response tree.
_PATHS: dict[str, tuple[str, ...]] = {
    **{name: (name,) for name in ("loss", "loss_sum", "total_weight", "per_sample")},
    **{name: (name,) for name in ("probs", "log_probs", "logsumexp")},
    **{name: ("diagnostics", name) for name in _BATCH},
    **{name: ("diagnostics", "numerical", name) for name in _NUMERICAL},
    **{name: ("diagnostics", "per_sample", name) for name in PER_SAMPLE_FIELDS},
}
_INTEGER_OUTPUTS = frozenset(
    {"count", "overflow_rows", "underflow_rows", "zero_probs", "predicted_class", "true_class_rank"}
)


@dataclass(frozen=True)
class TensorSpec:
    """A tensor of the model metadata; -1 is a dimension of any size."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    optional: bool = False

    def metadata(self) -> dict[str, Any]:
        """The tensor as ``GET /v2/models/{name}`` describes it."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    def config(self) -> dict[str, Any]:
        """The tensor as Triton's model configuration describes it."""
        body: dict[str, Any] = {
            "name": self.name,
            "data_type": f"TYPE_{self.datatype}",
            "dims": list(self.shape),
        }
        if self.optional:
            body["optional"] = True
        return body


@dataclass(frozen=True)
class Model:
    """A protocol model backed by a /v1 endpoint."""

    name: str
    endpoint: Endpoint
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    default_outputs: tuple[str, ...]
    parameters: tuple[str, ...]
    array_outputs: frozenset[str]

    # Every output this model can return; a plain attribute (no property, no
    # cached_property: bench/README.md, tried and dropped).
    output_names: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "output_names", frozenset(spec.name for spec in self.outputs))

    def compute(
        self,
        arrays: Mapping[str, np.ndarray[Any, Any]],
        parameters: Mapping[str, Any],
        requested: Sequence[str] | None,
        threads: int = 1,
    ) -> tuple[dict[str, np.ndarray[Any, Any]], dict[str, Any]]:
        """Run the /v1 endpoint: the outputs asked for (defaults if None), and what was used.

        The second value holds the precision, and for losses the label kind and reduction.
        """
        names = list(requested) if requested is not None else list(self.default_outputs)
        unknown = [name for name in names if name not in self.output_names]
        if unknown:
            known = ", ".join(sorted(self.output_names))
            raise InvalidFields(
                [
                    (("outputs", n), f"unknown output {n!r}; expected one of {known}", "enum")
                    for n in unknown
                ]
            )
        options = self._options(parameters, names)
        decoded = DecodedBody(options, {k: DecodedArray(v, False) for k, v in arrays.items()})
        try:
            body = self.endpoint.compute(decoded, threads)
        except InvalidFields as exc:
            # Options are request parameters here: say so in the location.
            raise InvalidFields(
                [
                    (("parameters", *loc) if loc and loc[0] in parameters else loc, text, kind)
                    for loc, text, kind in exc.errors
                ]
            ) from exc
        produced: dict[str, np.ndarray[Any, Any]] = {}
        for name in names:
            value: Any = body
            for key in _PATHS[name]:
                value = None if value is None else value.get(key)
            if value is None and requested is None:
                continue  # e.g. the loss with reduction none, unless asked for by name
            produced[name] = _as_array(name, value)
        used: dict[str, Any] = {
            k: body[k] for k in ("precision", "label_kind", "reduction") if k in body
        }
        return produced, used

    def _options(self, parameters: Mapping[str, Any], names: Sequence[str]) -> dict[str, Any]:
        options: dict[str, Any] = {}
        for key, value in parameters.items():
            if key in _IGNORED_PARAMETERS or key.startswith("triton_"):
                continue
            if key not in self.parameters:
                allowed = ", ".join(self.parameters)
                message = f"unknown parameter {key!r}; expected one of {allowed}"
                raise InvalidFields([(("parameters", key), message, "extra_forbidden")])
            options[key] = value
        options["outputs"] = [name for name in names if name in self.array_outputs]
        options["diagnostics"] = any(_PATHS[name][0] == "diagnostics" for name in names)
        if self.endpoint is not SOFTMAX:
            options["per_sample_diagnostics"] = any(name in PER_SAMPLE_FIELDS for name in names)
        return options


def _as_array(name: str, value: Any) -> np.ndarray[Any, Any]:
    if isinstance(value, np.ndarray):
        return value
    if name in _INTEGER_OUTPUTS:
        return np.array([value], dtype=np.int64)
    # None (no scored sample, or the loss of reduction none) is NaN, as NumPy has it.
    return np.array([np.nan if value is None else value], dtype=np.float64)


def _specs(names: Sequence[str], shape: tuple[int, ...]) -> tuple[TensorSpec, ...]:
    return tuple(TensorSpec(n, "INT64" if n in _INTEGER_OUTPUTS else "FP64", shape) for n in names)


_ANY = (-1, -1)
_PREDICTIONS = (
    TensorSpec("logits", "FP32", _ANY, optional=True),
    TensorSpec("log_probs", "FP32", _ANY, optional=True),
    TensorSpec("probs", "FP32", _ANY, optional=True),
)
_SCALARS = _specs(("loss", "loss_sum", "total_weight"), (1,))
_DIAGNOSTICS = _specs((*_BATCH, *_NUMERICAL), (1,)) + _specs(PER_SAMPLE_FIELDS, (-1,))


def _loss_model(name: str, endpoint: Endpoint, labels: TensorSpec, extra: str) -> Model:
    return Model(
        name=name,
        endpoint=endpoint,
        inputs=(
            *_PREDICTIONS,
            labels,
            TensorSpec(extra, "FP32", (-1,), optional=True),
            TensorSpec("sample_weights", "FP32", (-1,), optional=True),
        ),
        outputs=(
            *_SCALARS,
            *_specs(("per_sample",), (-1,)),
            *_specs(("probs", "log_probs"), _ANY),
            *_DIAGNOSTICS,
        ),
        default_outputs=("loss", "loss_sum", "total_weight", "per_sample"),
        parameters=(*_LOSS_PARAMETERS, "precision"),
        array_outputs=frozenset({"per_sample", "probs", "log_probs"}),
    )


MODELS: dict[str, Model] = {
    "cross-entropy": _loss_model(
        "cross-entropy", CROSS_ENTROPY, TensorSpec("labels", "INT64", (-1,)), "class_weights"
    ),
    "binary-cross-entropy": _loss_model(
        "binary-cross-entropy",
        BINARY_CROSS_ENTROPY,
        TensorSpec("labels", "FP32", _ANY),
        "pos_weight",
    ),
    "softmax": Model(
        name="softmax",
        endpoint=SOFTMAX,
        inputs=(TensorSpec("logits", "FP32", _ANY),),
        outputs=_specs(("probs", "log_probs"), _ANY)
        + _specs(("logsumexp",), (-1,))
        + _specs(("count", "mean_confidence", "mean_entropy", *_NUMERICAL), (1,)),
        default_outputs=("probs",),
        parameters=("temperature", "axis", "precision"),
        array_outputs=frozenset({"probs", "log_probs", "logsumexp"}),
    ),
}


def find_model(name: str, version: str | None = None) -> Model:
    """The model of that name (and version, if given); 404 for any other.

    Raises:
        HTTPException: 404, answered as ``{"error"}`` on /v2 REST, NOT_FOUND over gRPC.
    """
    model = MODELS.get(name)
    if model is None:
        raise HTTPException(404, f"unknown model {name!r}; the models are {', '.join(MODELS)}")
    if version is not None and version != VERSION:
        raise HTTPException(404, f"model {name!r} has only version {VERSION}, not {version!r}")
    return model
