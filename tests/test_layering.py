"""The dependency direction: app.core and app.codecs import nothing from the web stack."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"
WEB = {"fastapi", "starlette", "pydantic", "pydantic_settings", "uvicorn", "prometheus_client"}
ALLOWED = {
    "core": {"numpy", "app.core"},
    "codecs": {"numpy", "msgspec", "orjson", "simdjson", "app.codecs"},
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    stdlib = set(__import__("sys").stdlib_module_names) | {"__future__"}
    for path in sorted((APP / package).rglob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if top in stdlib:
                continue
            assert top not in WEB, f"{path.name} imports {name}"
            assert any(name == a or name.startswith(a + ".") for a in ALLOWED[package]), (
                f"{path.relative_to(APP)} imports {name}"
            )
