"""The layers point down: no module imports one of a higher layer, and no imports form a circle.

The layers, lowest first, are the README's ("How it fits together"); this test reads every
module's imports (top-level and inside functions) with `ast`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

PACKAGES = ("deploy", "model_repository", "preprocessing", "frontend", "benchmarks")
LAYERS: tuple[tuple[str, ...], ...] = (
    ("deploy", "model_repository"),
    ("preprocessing",),
    ("frontend.crypto", "frontend.inference"),
    ("frontend.contract",),
    ("frontend.service",),
    ("frontend.sdk", "frontend.config"),
    ("frontend.api",),
    ("frontend.__main__",),
    ("benchmarks",),
)
"""Each tuple is one layer; a module may import its own part and the layers below it."""


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (REPO_ROOT / package).rglob("*.py"):
            if "embedded" in path.parts or path.name.endswith("_pb2.py"):
                continue
            if path == REPO_ROOT / "frontend" / "__init__.py":
                continue  # the empty package: its parts each have a layer
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _imports(path: Path, known: set[str]) -> set[str]:
    """The project's modules a file imports, anywhere in it."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {n for n in names if n in known}


def _part(module: str) -> tuple[int, str]:
    """The layer of a module and the part of it the module belongs to."""
    for rank, layer in enumerate(LAYERS):
        for part in layer:
            if module == part or module.startswith(part + "."):
                return rank, part
    raise AssertionError(f"{module} is in no layer of LAYERS")


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, set(modules)) - {name} for name, path in modules.items()}


def test_every_import_points_to_the_same_part_or_a_lower_layer():
    upward = []
    for module, imported in _graph().items():
        rank, part = _part(module)
        for target in imported:
            target_rank, target_part = _part(target)
            if target_part != part and target_rank >= rank:
                upward.append(f"{module} -> {target}")
    assert upward == []


def test_no_modules_import_each_other_in_a_circle():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                circles.append(" -> ".join([*path[path.index(target):], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert circles == []
