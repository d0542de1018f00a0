"""The public reference cases of tests/vectors/cross_entropy.json, through the core."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from app.core import (
    LossOptions,
    ScoringError,
    score_binary_cross_entropy,
    score_cross_entropy,
)

CASES = json.loads((Path(__file__).parents[1] / "vectors" / "cross_entropy.json").read_text())[
    "cases"
]
# Errors that only a codec or the API can raise (ragged arrays, strings, unknown
# enum values before they become options).
NOT_CORE = {"ragged_logits", "string_logit", "bad_reduction"}
OPTION_KEYS = (
    "reduction",
    "class_weights",
    "sample_weights",
    "pos_weight",
    "ignore_index",
    "label_smoothing",
    "temperature",
)


def _run(case):
    req = case["request"]
    kw = {k: req[k] for k in OPTION_KEYS if req.get(k) is not None}
    for k in ("class_weights", "sample_weights", "pos_weight"):
        if k in kw:
            kw[k] = np.asarray(kw[k], dtype=np.float64)
    opts = LossOptions(outputs=frozenset({"per_sample", "probs"}), **kw)
    x = np.asarray(req["logits"], dtype=np.float64)
    y = np.asarray(req["labels"])
    fn = score_cross_entropy if case["endpoint"] == "cross-entropy" else score_binary_cross_entropy
    return fn(x, y, opts)


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c["name"]) for c in CASES if not c.get("expect_error")]
)
def test_reference_values(case):
    res = _run(case)
    exp, tol = case["expected"], case["tolerance"]
    assert_allclose(res.per_sample, exp["per_sample"], **tol)
    assert_allclose(res.probs, exp["probs"], **tol)
    if exp["loss"] is None:
        assert res.loss is None
    else:
        assert_allclose(res.loss, exp["loss"], **tol)


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, id=c["name"])
        for c in CASES
        if c.get("expect_error") and c["name"] not in NOT_CORE
    ],
)
def test_reference_errors(case):
    with pytest.raises(ScoringError) as info:
        _run(case)
    assert info.value.loc[0] == case["error_field"]
