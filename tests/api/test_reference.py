"""Every scoring route against mpmath at 50 digits, on rows that break a textbook softmax.

The rows travel as binary tensors (their exact bits) and come back as binary tensors, so
the comparison is with the computation itself, not with a decimal rendering: /v1 JSON and
msgpack, and /v2 binary. Tolerances and the reference: tests/reference.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.api.v2.wire import outputs, request
from tests.api.wire import as_array, as_float, decode, encode, tensor
from tests.reference import (
    assert_log_probs,
    assert_loss,
    assert_lse,
    assert_probability,
    assert_probs,
    entropy_bound,
    exact,
)

# (logits row, label, dtype): overflow and underflow in each precision, huge spreads,
# ties, a confident row whose entropy a textbook formula loses, subnormal logits.
ROWS = [
    pytest.param([-88.8, -86.5], 0, "float32", id="f32-all-below-exp-range"),
    pytest.param([-710.0, -705.5], 0, "float64", id="f64-all-below-exp-range"),
    pytest.param([1000.0, 999.0, 0.0], 1, "float64", id="f64-overflowing-exp"),
    pytest.param([100.0, 99.0, -5.0], 0, "float32", id="f32-overflowing-exp"),
    pytest.param([-60.0, -80.0, -110.0], 0, "float32", id="f32-underflowing-exp"),
    pytest.param([30.0, 0.0, 0.0], 0, "float64", id="f64-confident"),
    pytest.param([1e4, -1e4, 0.0], 2, "float64", id="f64-spread-2e4"),
    pytest.param([2.0, 2.0, 1.0], 1, "float32", id="tie"),
    pytest.param([1e-40, 0.0, -1e-40], 0, "float32", id="f32-subnormal-logits"),
    pytest.param([1.0, 2.0, 3.0], 2, "float32", id="classic"),
]
ROWS_OF = 5  # the same row, five times: a batch


def _check(dtype: str, x: list[float], y: int, per_sample: Any, probs: Any, log_probs: Any) -> None:
    dt = np.dtype(dtype)
    ref = exact(np.array(x, dt))
    for i in range(ROWS_OF):
        assert_loss(float(per_sample[i]), ref, y, dt, (x, i))
        assert_probs(probs[i], ref, dt, (x, i))
        assert_log_probs(log_probs[i], ref, dt, (x, i))


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
@pytest.mark.parametrize(("x", "y", "dtype"), ROWS)
def test_v1_cross_entropy(client: Any, x: list[float], y: int, dtype: str, encoding: str) -> None:
    logits = np.tile(np.array(x, dtype), (ROWS_OF, 1))
    body = {
        "logits": tensor(logits, json_body=encoding == "json"),
        "labels": tensor(np.full(ROWS_OF, y), json_body=encoding == "json"),
        "outputs": ["per_sample", "probs", "log_probs"],
        "per_sample_diagnostics": True,
    }
    content, media = encode(body, encoding)
    response = client.post("/v1/cross-entropy", content=content, headers={"content-type": media})
    assert response.status_code == 200, response.text
    out = decode(response.content, response.headers["content-type"])
    per, probs, lp = (as_array(out[k]) for k in ("per_sample", "probs", "log_probs"))
    _check(dtype, x, y, per, probs, lp)
    ref = exact(np.array(x, dtype))
    d = out["diagnostics"]
    assert_probability(as_float(d["mean_true_class_prob"]), ref.probs[y], np.dtype(dtype))
    assert abs(as_float(d["mean_entropy"]) - float(ref.entropy)) <= entropy_bound(ref, dtype)
    first_max = max(range(len(x)), key=lambda k: (ref.x[k], -k))
    assert as_array(d["per_sample"]["predicted_class"]).tolist() == [first_max] * ROWS_OF
    assert d["accuracy"] == (1.0 if first_max == y else 0.0)


@pytest.mark.parametrize(("x", "y", "dtype"), ROWS)
def test_v1_softmax(client: Any, x: list[float], y: int, dtype: str) -> None:
    del y
    logits = np.tile(np.array(x, dtype), (ROWS_OF, 1))
    body = {
        "logits": tensor(logits, json_body=True),
        "outputs": ["probs", "log_probs", "logsumexp"],
    }
    content, media = encode(body, "json")
    response = client.post("/v1/softmax", content=content, headers={"content-type": media})
    assert response.status_code == 200, response.text
    out = decode(response.content, response.headers["content-type"])
    ref = exact(np.array(x, dtype))
    probs, lp, lse = (as_array(out[k]) for k in ("probs", "log_probs", "logsumexp"))
    for i in range(ROWS_OF):
        assert_probs(probs[i], ref, np.dtype(dtype), (x, i))
        assert_log_probs(lp[i], ref, np.dtype(dtype), (x, i))
        assert_lse(float(lse[i]), ref, np.dtype(dtype), (x, i))


@pytest.mark.parametrize(("x", "y", "dtype"), ROWS)
def test_v2_cross_entropy(client: Any, x: list[float], y: int, dtype: str) -> None:
    logits = np.tile(np.array(x, dtype), (ROWS_OF, 1))
    body, headers = request(
        {"logits": logits, "labels": np.full(ROWS_OF, y, np.int64)},
        binary=True,
        outputs=["per_sample", "probs", "log_probs", "mean_entropy"],
        binary_outputs=True,
    )
    response = client.post("/v2/models/cross-entropy/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    _, out = outputs(response.content, response.headers.get("inference-header-content-length"))
    _check(dtype, x, y, out["per_sample"], out["probs"], out["log_probs"])
    ref = exact(np.array(x, dtype))
    entropy = float(out["mean_entropy"].reshape(-1)[0])
    assert abs(entropy - float(ref.entropy)) <= entropy_bound(ref, dtype)
