"""A temperature so small that logits / T overflows is an error, never a NaN loss."""

from __future__ import annotations

import numpy as np
import pytest

from app.core import InvalidOption, LossOptions, score_cross_entropy


@pytest.mark.parametrize(
    ("temperature", "precision"),
    [
        pytest.param(1e-320, "float64", id="subnormal-float64"),
        pytest.param(1e-300, "float64", id="tiny-float64"),
        pytest.param(1e-40, "float32", id="tiny-float32"),
    ],
)
def test_overflowing_temperature(temperature: float, precision: str) -> None:
    logits = np.array([[1.0, 2.0, 1e10]])
    options = LossOptions(temperature=temperature, precision=precision)  # type: ignore[arg-type]
    with pytest.raises(InvalidOption, match="overflow") as info:
        score_cross_entropy(logits, np.array([2]), options)
    assert info.value.loc == ("temperature",)


def test_small_temperature_that_fits_is_scored() -> None:
    options = LossOptions(temperature=1e-3)
    result = score_cross_entropy(np.array([[1.0, 2.0, -np.inf]]), np.array([1]), options)
    assert result.loss == pytest.approx(0.0)
