"""The package's layers point one way, and each function imports only what it uses.

Layers, top to bottom: handlers -> wiring (with kinds, settings, observability) -> adapters ->
models -> domain. A module may import its own layer and the layers below it, never one above;
and no two parts of the package (its folders and top-level modules) import each other,
directly or round a longer loop. Every import counts, wherever it is written: inside a
function, or under TYPE_CHECKING.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.coldstart import function_environment, function_modules
from devstack.template import load_template

PACKAGE = "vector_tasks"
PACKAGE_DIR = Path(__file__).resolve().parents[2] / "functions" / PACKAGE
LAYERS: list[set[str]] = [
    {"handlers"},
    {"wiring", "kinds", "settings", "observability"},
    {"adapters"},
    {"models"},
    {"domain"},
]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    path = PACKAGE_DIR.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> Iterator[str]:
    """Every vector_tasks module that `path` imports, at any depth of its code."""
    module = _module_name(path)
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            if source.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:  # `from vector_tasks import wiring` imports a module
                yield f"{source}.{alias.name}" if _is_module(f"{source}.{alias.name}") else source


def _part(module: str) -> str:
    """The part of the package a module belongs to: its top-level folder or module."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _edges() -> list[tuple[str, str]]:
    return [
        (_module_name(path), imported)
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        for imported in _imports(path)
        if _part(imported)  # `import vector_tasks` itself says nothing
    ]


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {_part(_module_name(path)) for path in PACKAGE_DIR.rglob("*.py")} - {""}
    assert parts - RANK.keys() == set(), "add the new part to LAYERS"


def test_no_import_points_up_a_layer() -> None:
    upward = [
        f"{importer} imports {imported}"
        for importer, imported in _edges()
        if RANK[_part(imported)] < RANK[_part(importer)]
    ]
    assert upward == []


def _folder(module: str) -> str:
    """The folder a module lives in (a package's own __init__ counts as in it)."""
    path = PACKAGE_DIR.parent.joinpath(*module.split("."))
    return module if (path / "__init__.py").is_file() else module.rsplit(".", 1)[0]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One loop per strongly connected group of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, set()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_two_folders_import_each_other() -> None:
    graph: dict[str, set[str]] = {}
    for importer, imported in _edges():
        source, target = _folder(importer), _folder(imported)
        if source != target:
            graph.setdefault(source, set()).add(target)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# -- what each function loads ----------------------------------------------------------------

TEMPLATE = load_template()
API_FUNCTIONS = sorted(
    logical_id
    for logical_id, resource in TEMPLATE["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
    and any(event["Type"] == "Api" for event in resource["Properties"].get("Events", {}).values())
)
# What only the worker needs: vectors, the OpenSearch client and the embedding providers.
WORKER_ONLY = ("numpy", "opensearchpy", "vector_tasks.adapters.embedders")


def _loaded_by(module: str, env: dict[str, str]) -> list[str]:
    probe = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        f"print(json.dumps([name for name in {list(WORKER_ONLY)!r} if name in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(PACKAGE_DIR.parent), **env},
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def test_the_template_has_the_three_api_functions() -> None:
    assert API_FUNCTIONS == ["TaskReadFunction", "TaskSubmitFunction", "TaskTransitionFunction"]


@pytest.mark.parametrize("function", API_FUNCTIONS)
def test_an_api_function_loads_no_numpy_opensearch_or_embedder(function: str) -> None:
    module = function_modules(TEMPLATE)[function]
    assert _loaded_by(module, function_environment(TEMPLATE, function)) == []


def test_the_domain_loads_no_numpy() -> None:
    domain = sorted(_module_name(p) for p in (PACKAGE_DIR / "domain").glob("*.py"))
    probe = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in domain)
    probe += "print('numpy' in sys.modules)\n"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(PACKAGE_DIR.parent)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False"
