"""Numerical core: stable softmax, cross-entropy and diagnostics in pure NumPy.

Imports only NumPy and the standard library; the web layer converts to and from it.
"""

from app.core.binary import score_binary_cross_entropy
from app.core.errors import (
    InvalidLabel,
    InvalidOption,
    InvalidShape,
    InvalidValue,
    NonFiniteInput,
    ScoringError,
    ZeroTotalWeight,
)
from app.core.losses import score_cross_entropy
from app.core.options import LossOptions, SoftmaxOptions
from app.core.probabilities import score_softmax
from app.core.results import (
    Diagnostics,
    LossResult,
    NumericalDiagnostics,
    PerSampleDiagnostics,
    SoftmaxResult,
)
from app.core.softmax import log_softmax, logsumexp, softmax

__all__ = [
    "Diagnostics",
    "InvalidLabel",
    "InvalidOption",
    "InvalidShape",
    "InvalidValue",
    "LossOptions",
    "LossResult",
    "NonFiniteInput",
    "NumericalDiagnostics",
    "PerSampleDiagnostics",
    "ScoringError",
    "SoftmaxOptions",
    "SoftmaxResult",
    "ZeroTotalWeight",
    "log_softmax",
    "logsumexp",
    "score_binary_cross_entropy",
    "score_cross_entropy",
    "score_softmax",
    "softmax",
]
