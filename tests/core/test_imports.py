"""The core imports NumPy and the standard library only, and exports what it promises."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import app.core

CORE = Path(app.core.__file__).parent


def test_core_imports_only_numpy_and_stdlib():
    allowed = {"numpy", "app", "__future__"} | set(sys.stdlib_module_names)
    for path in CORE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, (path.name, name)


def test_public_api():
    assert sorted(app.core.__all__) == sorted(
        [
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
    )
    for name in app.core.__all__:
        assert getattr(app.core, name) is not None
