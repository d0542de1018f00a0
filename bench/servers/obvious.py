"""The obvious FastAPI endpoint: a pydantic body of ``list[list[float]]``, default JSON response.

This is what the issue calls "written the obvious way": every float goes through pydantic,
then ``jsonable_encoder`` and the stdlib ``json`` on the way out. JSON only; no tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class CrossEntropyRequest(BaseModel):
    logits: list[list[float]]
    labels: list[int]
    outputs: list[str] = ["per_sample"]


@app.post("/v1/cross-entropy")
def cross_entropy(request: CrossEntropyRequest) -> dict[str, Any]:
    x = np.asarray(request.logits, dtype=np.float64)
    y = np.asarray(request.labels, dtype=np.int64)
    m = x.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(x - m).sum(axis=1, keepdims=True))
    per_sample = lse[:, 0] - x[np.arange(len(y)), y]
    body: dict[str, Any] = {"loss": float(per_sample.mean())}
    if "per_sample" in request.outputs:
        body["per_sample"] = per_sample.tolist()
    if "probs" in request.outputs:
        body["probs"] = np.exp(x - lse).tolist()
    return body
