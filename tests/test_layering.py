"""The dependency direction, no import cycles, and where exceptions live."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"
CLIENT = APP.parent / "clients" / "python" / "scorer_client"
ROOTS = (APP, CLIENT)
WEB = {"fastapi", "starlette", "pydantic", "pydantic_settings", "uvicorn", "prometheus_client"}
ALLOWED = {
    "core": {"numpy", "app.core", "scorer_client.metrics"},
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


# No import cycles anywhere in app/ or the client: each module can be read after the ones
# it imports.


def _module_name(path: Path) -> str:
    root = next(root for root in ROOTS if path.is_relative_to(root))
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """Module -> the app and client modules it imports (TYPE_CHECKING, relative too)."""
    paths = {_module_name(path): path for root in ROOTS for path in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                for alias in node.names:
                    # ``from app.api import scoring`` imports the module app.api.scoring.
                    child = f"{base}.{alias.name}"
                    found.add(child if child in paths else base)
        graph[name] = {module for module in found if module in paths and module != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules around it, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                return [*path[path.index(imported) :], imported]
            if imported not in state and (found := visit(imported)) is not None:
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)) is not None:
            return found
    return None


def test_no_import_cycles() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


# Every exception of a layer lives in that layer's errors module, which imports nothing
# else from its layer: any module may raise them, and the error table sees them all.

# The most specific first: a module belongs to the first layer it is under.
LAYERS = ("app.api", "app.codecs", "app.core", "scorer_client.metrics", "scorer_client")


@pytest.mark.parametrize("layer", LAYERS)
def test_errors_module_imports_nothing_else_from_its_layer(layer: str) -> None:
    imported = _graph()[f"{layer}.errors"]
    assert not {m for m in imported if m == layer or m.startswith(layer + ".")}, imported


def test_every_exception_lives_in_its_layers_errors_module() -> None:
    import importlib
    import inspect

    misplaced = []
    for name in sorted(_graph()):
        if name.endswith("__main__") or name == "app.main":
            continue  # running them writes files or builds an app; they define no errors
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == name:
                layer = next((lay for lay in LAYERS if name.startswith(lay + ".")), None)
                if layer is None or name != f"{layer}.errors":
                    misplaced.append(f"{name}.{value.__name__}")
    assert not misplaced, misplaced
