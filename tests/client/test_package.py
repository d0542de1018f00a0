"""The client distribution stands alone: no server import, and its metrics without httpx."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "python" / "scorer_client"


def test_the_client_imports_nothing_of_the_server() -> None:
    for path in sorted(CLIENT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top not in {"app", "fastapi", "starlette", "uvicorn", "pydantic"}, (
                    f"{path.relative_to(CLIENT)} imports {name}"
                )


def test_the_metrics_import_neither_httpx_nor_the_clients() -> None:
    code = (
        "import sys, scorer_client.metrics\n"
        "assert 'httpx' not in sys.modules, 'httpx'\n"
        "assert 'scorer_client.sync' not in sys.modules, 'sync'\n"
        "import scorer_client\n"
        "assert scorer_client.ScoringClient.__module__ == 'scorer_client.sync'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
