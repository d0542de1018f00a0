"""A temperature so small that logits / T overflows is an error, never a NaN loss."""

from __future__ import annotations

import numpy as np
import pytest

from app.core import InvalidOption, InvalidValue, LossOptions, score_cross_entropy, score_softmax
from app.core.options import SoftmaxOptions


@pytest.mark.parametrize(("precision", "big"), [("float32", 1e30), ("float64", 1e300)])
@pytest.mark.parametrize("rows", [1, 3000])
def test_overflowing_temperature(precision: str, big: float, rows: int) -> None:
    logits = np.tile([[1.0, 2.0, big]], (rows, 1))
    options = LossOptions(temperature=1 / big, precision=precision)  # type: ignore[arg-type]
    with pytest.raises(InvalidOption, match="overflow") as info:
        score_cross_entropy(logits, np.zeros(rows, int), options)
    assert info.value.loc == ("temperature",)


# Cast to the compute precision these are 0, subnormal (digits lost) or inf: a 0/0 NaN
# logit, or every logit 0, is not the temperature asked for.
@pytest.mark.parametrize(
    ("temperature", "precision"),
    [
        pytest.param(1e-320, "float64", id="subnormal-float64"),
        pytest.param(1e-40, "float32", id="subnormal-float32"),
        pytest.param(1e-50, "float32", id="zero-in-float32"),
        pytest.param(1e39, "float32", id="inf-in-float32"),
    ],
)
def test_a_temperature_the_precision_cannot_hold_is_refused(
    temperature: float, precision: str
) -> None:
    zeros = np.zeros((2, 3), np.dtype(precision))
    with pytest.raises(InvalidValue, match="temperature must be in") as info:
        score_cross_entropy(zeros, np.array([0, 1]), LossOptions(temperature=temperature))
    assert info.value.loc == ("temperature",)
    with pytest.raises(InvalidValue, match="temperature must be in") as info:
        score_softmax(zeros, SoftmaxOptions(temperature=temperature))
    assert info.value.loc == ("temperature",)


def test_small_temperature_that_fits_is_scored() -> None:
    options = LossOptions(temperature=1e-3)
    result = score_cross_entropy(np.array([[1.0, 2.0, -np.inf]]), np.array([1]), options)
    assert result.loss == pytest.approx(0.0)
