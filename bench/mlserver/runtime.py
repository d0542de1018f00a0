"""A custom MLServer runtime for the cross-entropy job, as a user of MLServer would write it.

Loaded by MLServer only (``mlserver start bench/mlserver``, from bench/.venvs/mlserver;
bench/peer.py does that): the model "cross-entropy" of model-settings.json takes the V2
inputs ``logits`` (FP32/FP64, [N, C]) and ``labels`` (INT64/INT32, [N]), decodes them with
MLServer's NumpyCodec and returns ``loss`` (FP64, [1]: the mean) and ``per_sample``
(FP32 for FP32 logits, else FP64; [N]), or the ones of these that the request's ``outputs`` name.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.errors import InferenceError
from mlserver.types import InferenceRequest, InferenceResponse, ResponseOutput

OUTPUTS = ("loss", "per_sample")


def cross_entropy(
    logits: np.ndarray[Any, Any], labels: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Per-sample ``logsumexp(x) - x[y]``, shifted by the row maximum, in the logits' dtype.

    FP32 logits are scored in float32 as the service does by default (its ``precision``).
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis=1))
    picked = np.take_along_axis(shifted, labels.astype(np.intp)[:, None], axis=1)[:, 0]
    return lse - picked


class CrossEntropyRuntime(MLModel):
    """Cross-entropy of logits against integer class labels."""

    async def load(self) -> bool:
        self.ready = True
        return self.ready

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        inputs = {i.name: self.decode(i, default_codec=NumpyCodec) for i in payload.inputs}
        if set(inputs) != {"logits", "labels"}:
            raise InferenceError(f"expected inputs logits and labels; got {sorted(inputs)}")
        logits, labels = inputs["logits"], inputs["labels"]
        if logits.dtype.kind != "f" or labels.dtype.kind not in "iu":
            raise InferenceError(f"datatypes {logits.dtype}, {labels.dtype}: want FP32/FP64, INT")
        if logits.ndim != 2 or labels.shape != logits.shape[:1]:
            raise InferenceError(f"shapes {logits.shape} and {labels.shape}: want [N, C] and [N]")
        if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
            raise InferenceError("labels out of range")
        per_sample = cross_entropy(logits, labels)
        values = {"loss": np.array([per_sample.mean(dtype=np.float64)]), "per_sample": per_sample}
        names = [o.name for o in payload.outputs] if payload.outputs else list(OUTPUTS)
        outputs: list[ResponseOutput] = []
        for name in names:
            if name not in values:
                raise InferenceError(f"unknown output {name!r}; expected one of {OUTPUTS}")
            output = NumpyCodec.encode_output(name, values[name])
            output.shape = list(values[name].shape)  # [N], not NumpyCodec's [N, 1]
            outputs.append(output)
        return InferenceResponse(
            id=payload.id, model_name=self.name, model_version=self.version, outputs=outputs
        )
