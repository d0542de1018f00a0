"""Validation: every error class with its loc and message, first offender, counts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from app.core import (
    InvalidLabel,
    InvalidOption,
    InvalidShape,
    InvalidValue,
    LossOptions,
    NonFiniteInput,
    SoftmaxOptions,
    ZeroTotalWeight,
    score_binary_cross_entropy,
    score_cross_entropy,
    score_softmax,
)


def ce(x, y, **kw):
    return score_cross_entropy(np.asarray(x), np.asarray(y), LossOptions(**kw))


def test_all_minus_inf_row():
    with pytest.raises(InvalidValue) as info:
        ce([[0.0, 1.0], [-np.inf, -np.inf], [-np.inf, -np.inf]], [0, 0, 1])
    assert info.value.loc == ("logits", 1)
    assert "2 rows" in info.value.message


@pytest.mark.parametrize(
    ("kw", "loc0"),
    [
        pytest.param({"ignore_index": -1}, "labels", id="all_ignored"),
        pytest.param({"sample_weights": np.zeros(2)}, "sample_weights", id="zero_sample_weights"),
        pytest.param({"class_weights": np.zeros(2)}, "class_weights", id="zero_class_weights"),
    ],
)
def test_zero_total_weight(kw, loc0):
    y = [-1, -1] if "ignore_index" in kw else [0, 1]
    with pytest.raises(ZeroTotalWeight) as info:
        ce([[0.0, 1.0], [1.0, 0.0]], y, **kw)
    assert info.value.loc == (loc0,)
    assert ce([[0.0, 1.0], [1.0, 0.0]], y, reduction="sum", **kw).loss == 0.0


@pytest.mark.parametrize(
    ("x", "kind", "error", "loc"),
    [
        pytest.param([[0.5, 0.6]], "probs", InvalidValue, ("probs", 0), id="probs_sum"),
        pytest.param([[1.5, -0.5]], "probs", InvalidValue, ("probs", 0, 0), id="probs_range"),
        pytest.param([[np.inf, 0.0]], "probs", NonFiniteInput, ("probs", 0, 0), id="probs_inf"),
        pytest.param([[0.1, -3.0]], "log_probs", InvalidValue, ("log_probs", 0, 0), id="lp_pos"),
        pytest.param([[-1.0, -1.0]], "log_probs", InvalidValue, ("log_probs", 0), id="lp_norm"),
        pytest.param(
            [[np.nan, 0.0]], "log_probs", NonFiniteInput, ("log_probs", 0, 0), id="lp_nan"
        ),
    ],
)
def test_input_kind_errors(x, kind, error, loc):
    with pytest.raises(error) as info:
        ce(x, [0], input_kind=kind)
    assert info.value.loc == loc


@pytest.mark.parametrize(
    ("labels", "kw", "error", "loc", "text"),
    [
        pytest.param(
            [0, 12, 1, 13], {}, InvalidLabel, ("labels", 1), "got 12 at index [1]", id="range"
        ),
        pytest.param([0.0, 1.0, 1.0, 0.0], {}, InvalidLabel, ("labels",), "integers", id="float"),
        pytest.param(
            [True, False, True, True], {}, InvalidLabel, ("labels",), "integers", id="bool"
        ),
        pytest.param(["a", "b", "c", "d"], {}, InvalidLabel, ("labels",), "integers", id="str"),
        pytest.param([0, 1], {}, InvalidShape, ("labels",), "(4, 10)", id="shape"),
        pytest.param(np.full((4, 10), 0.2), {}, InvalidValue, ("labels", 0), "sum", id="prob_sum"),
        pytest.param(
            np.eye(10)[:4] * -1, {}, InvalidValue, ("labels", 0, 0), "[0, 1]", id="prob_neg"
        ),
    ],
)
def test_label_errors(labels, kw, error, loc, text):
    with pytest.raises(error) as info:
        ce(np.zeros((4, 10)), labels, **kw)
    assert info.value.loc == loc
    assert text in info.value.message


def test_label_error_message():
    with pytest.raises(InvalidLabel) as info:
        ce(np.zeros((5, 10)), [0, 1, 2, 12, 10])
    assert info.value.message == (
        "labels must be integers in [0, 10); got 12 at index [3] (2 invalid labels)"
    )


def test_nan_logit_message():
    x = np.zeros((4, 8))
    x[3, 7] = np.nan
    x[2, 1] = np.inf
    with pytest.raises(NonFiniteInput) as info:
        ce(x, [0, 0, 0, 0])
    assert info.value.loc == ("logits", 2, 1)
    assert (
        info.value.message
        == "logits must be finite or -inf; got inf at [2, 1] (2 non-finite values)"
    )


@pytest.mark.parametrize(
    ("x", "kw", "error", "loc"),
    [
        pytest.param(
            [[0.0, 1.0]],
            {"label_smoothing": 1.5},
            InvalidOption,
            ("label_smoothing",),
            id="smoothing",
        ),
        pytest.param(
            [[0.0, 1.0]],
            {"label_smoothing": np.nan},
            InvalidOption,
            ("label_smoothing",),
            id="smoothing_nan",
        ),
        pytest.param([[0.0, 1.0]], {"temperature": 0.0}, InvalidOption, ("temperature",), id="t0"),
        pytest.param(
            [[0.0, 1.0]], {"temperature": np.inf}, InvalidOption, ("temperature",), id="tinf"
        ),
        pytest.param(
            [[0.5, 0.5]],
            {"temperature": 2.0, "input_kind": "probs"},
            InvalidOption,
            ("temperature",),
            id="t_probs",
        ),
        pytest.param([[0.0, 1.0]], {"axis": 2}, InvalidOption, ("axis",), id="axis"),
        pytest.param([[0.0, 1.0]], {"axis": True}, InvalidOption, ("axis",), id="axis_bool"),
        pytest.param(
            [[0.0, 1.0]], {"reduction": "avg"}, InvalidOption, ("reduction",), id="reduction"
        ),
        pytest.param(
            [[0.0, 1.0]], {"input_kind": "odds"}, InvalidOption, ("input_kind",), id="kind"
        ),
        pytest.param(
            [[0.0, 1.0]], {"precision": "float16"}, InvalidOption, ("precision",), id="precision"
        ),
        pytest.param(
            [[0.0, 1.0]], {"outputs": frozenset({"x"})}, InvalidOption, ("outputs",), id="outputs"
        ),
        pytest.param(
            [[0.0, 1.0]], {"ignore_index": 1.5}, InvalidOption, ("ignore_index",), id="ignore_float"
        ),
        pytest.param(
            [[0.0, 1.0]], {"pos_weight": 2.0}, InvalidOption, ("pos_weight",), id="pos_weight"
        ),
        pytest.param(
            [[0.0, 1.0]],
            {"class_weights": np.ones(3)},
            InvalidShape,
            ("class_weights",),
            id="cw_shape",
        ),
        pytest.param(
            [[0.0, 1.0]],
            {"class_weights": np.array([1.0, -1.0])},
            InvalidValue,
            ("class_weights", 1),
            id="cw_neg",
        ),
        pytest.param(
            [[0.0, 1.0]],
            {"class_weights": np.array([np.nan, 1.0])},
            InvalidValue,
            ("class_weights", 0),
            id="cw_nan",
        ),
        pytest.param(
            [[0.0, 1.0]],
            {"class_weights": np.array([True, True])},
            InvalidValue,
            ("class_weights",),
            id="cw_bool",
        ),
        pytest.param(
            [[0.0, 1.0]],
            {"sample_weights": np.ones(2)},
            InvalidShape,
            ("sample_weights",),
            id="sw_shape",
        ),
        pytest.param(
            [[0.0, 1.0]],
            {"sample_weights": np.ones((1, 1))},
            InvalidShape,
            ("sample_weights",),
            id="sw_rank",
        ),
        pytest.param(
            [[0.0, 1.0]],
            {"sample_weights": np.array([-1.0])},
            InvalidValue,
            ("sample_weights", 0),
            id="sw_neg",
        ),
        pytest.param(np.zeros((0, 3)), {}, InvalidShape, ("logits",), id="empty"),
        pytest.param(np.zeros((2, 0)), {}, InvalidShape, ("logits",), id="no_classes"),
        pytest.param(np.float64(1.0), {}, InvalidShape, ("logits",), id="scalar"),
        pytest.param([[True, False]], {}, InvalidValue, ("logits",), id="bool_logits"),
        pytest.param([[0.5, 0.5]], {"input_kind": "probs"}, None, None, id="ok_probs"),
    ],
)
def test_option_and_input_errors(x, kw, error, loc):
    y = [0] if np.ndim(x) == 2 and np.shape(x)[0] == 1 else 0
    if error is None:
        ce(x, y, **kw)
        return
    with pytest.raises(error) as info:
        ce(x, y, **kw)
    assert info.value.loc == loc


def test_rank_one_all_minus_inf():
    with pytest.raises(InvalidValue) as info:
        ce([-np.inf, -np.inf], 0)
    assert info.value.loc == ("logits",)


def test_errors_skip_ignored_rows():
    with pytest.raises(NonFiniteInput) as info:
        ce([[np.nan, 0.0], [np.nan, 0.0]], [-100, 0], ignore_index=-100)
    assert info.value.loc == ("logits", 1, 0)
    assert "(1 non-finite" in info.value.message
    with pytest.raises(InvalidValue) as info:
        ce([[-np.inf, -np.inf], [-np.inf, -np.inf]], [-100, 0], ignore_index=-100)
    assert info.value.loc == ("logits", 1)
    assert "(1 rows)" in info.value.message


def test_error_located_across_blocks():
    x = np.zeros((70_000, 2))
    x[69_999, 1] = np.nan
    with pytest.raises(NonFiniteInput) as info:
        ce(x, np.zeros(70_000, np.int64))
    assert info.value.loc == ("logits", 69_999, 1)


def test_sample_weights_not_broadcastable():
    with pytest.raises(InvalidShape) as info:
        ce(np.zeros((2, 3)), [0, 1], sample_weights=np.ones(3))
    assert info.value.loc == ("sample_weights",)


def test_non_finite_probability_labels_are_invalid_values():
    with pytest.raises(InvalidValue) as info:
        ce(np.zeros((2, 2)), [[0.5, 0.5], [np.nan, 1.0]])
    assert info.value.loc == ("labels", 1, 0)


@pytest.mark.parametrize("field", ["temperature", "label_smoothing"])
def test_bool_options_rejected(field):
    with pytest.raises(InvalidOption) as info:
        ce([[0.0, 1.0]], [0], **{field: True})
    assert info.value.loc == (field,)


# precision float32 on float64 values past float32's range: the cast made them inf, and
# the answers -inf, NaN or inf. Each is refused, naming the field and the first index.
_HUGE = 1e39
_FITS = [
    pytest.param(
        lambda p: score_cross_entropy(np.array([[1.0, _HUGE, 3.0]]), np.array([2]), p),
        ("logits", 0, 1),
        id="logits",
    ),
    pytest.param(
        lambda p: score_cross_entropy(
            np.array([[1.0, 2.0, 3.0]]),
            np.array([2]),
            replace(p, class_weights=np.array([1, _HUGE, 1])),
        ),
        ("class_weights", 1),
        id="class-weights",
    ),
    pytest.param(
        lambda p: score_cross_entropy(
            np.array([[1.0, 2.0], [3.0, 4.0]]),
            np.array([0, 1]),
            replace(p, sample_weights=np.array([1.0, _HUGE])),
        ),
        ("sample_weights", 1),
        id="sample-weights",
    ),
    pytest.param(
        lambda p: score_binary_cross_entropy(
            np.array([0.5, -1.0]), np.array([1.0, 0.0]), replace(p, pos_weight=_HUGE)
        ),
        ("pos_weight",),
        id="pos-weight",
    ),
    pytest.param(
        lambda p: score_softmax(np.array([[_HUGE, 1.0]]), SoftmaxOptions(precision="float32")),
        ("logits", 0, 0),
        id="softmax-logits",
    ),
]


@pytest.mark.parametrize(("call", "loc"), _FITS)
def test_values_past_the_compute_precision_are_refused(call: Any, loc: tuple[Any, ...]) -> None:
    with pytest.raises(InvalidValue, match="in magnitude to compute in float32") as info:
        call(LossOptions(precision="float32"))
    assert info.value.loc == loc


def test_infinities_are_not_out_of_range() -> None:
    # inf stays inf in any precision: the loss path's own rules apply, not this check.
    x = np.array([[1.0, 2.0, -np.inf]])
    result = score_cross_entropy(x, np.array([0]), LossOptions(precision="float32"))
    assert result.loss is not None
    assert np.isfinite(result.loss)
