"""Mutation testing of functions/vector_tasks/domain (`make mutation`).

One AST change at a time over each module: comparison operators flipped or loosened, `and` /
`or` swapped, `not` dropped, conditions negated, booleans flipped, int constants moved by one,
`+` / `-` swapped (augmented assignments too), a statement removed, a returned value replaced
by None. Each mutant is compiled and run against the tests that cover its module, in a fresh
interpreter (two at a time, `--jobs`), with the module's source swapped in by an import hook,
so nothing on disk changes. A mutant is killed when the tests fail (or time out); it survives
when they pass. Mutants judged equivalent (no test could tell them from the original) are
listed in EQUIVALENT with the reason, and left out of the score.

Prints, per module: mutants, killed, survived, equivalent, score = killed / (mutants -
equivalent); then every survivor not judged equivalent, with its line; then the run time.
`--check` exits 1 when a module of TARGETS scores below 90 %.
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib.abc
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = ROOT / "functions" / "vector_tasks" / "domain"
PACKAGE = "vector_tasks.domain"
# The fast tier, and the contract suite on the in-memory store (its DynamoDB half needs a namespace).
DOMAIN_TESTS = ["tests/domain", "tests/contract/test_task_store.py", "-k", "not dynamodb"]
# Modules the domain tier does not exercise fully are also run against the unit tier.
TESTS: dict[str, list[str]] = {
    "processing": DOMAIN_TESTS,
    "tasks": DOMAIN_TESTS,
    "transitions": DOMAIN_TESTS,
    "chunking": DOMAIN_TESTS,
    "lifecycle": DOMAIN_TESTS,
    "reconcile": DOMAIN_TESTS,
}
OTHER_TESTS = ["tests/domain", "tests/unit", "tests/contract/test_task_store.py", "-k", "not dynamodb"]
TARGETS = ("processing", "tasks", "transitions", "chunking", "reconcile")
TIMEOUT_S = 60.0

# (module, "line:col operator") -> why no test can kill it. Reviewed by hand; see README.
EQUIVALENT: dict[tuple[str, str], str] = {
    ("processing", "73:99 True -> False"): (
        "require_all_chunks on the final transition: the task was just read in this attempt with "
        "chunks_done >= chunk_count, counters only grow within an attempt, and a restart changes the "
        "attempt, which the same write refuses anyway"
    ),
    ("reconcile", "86:16 return None"): (
        "_partition's False when a budget runs out: the caller only tests it for truth, and None is false as well"
    ),
    ("model", "60:7 <= -> <"): (
        "the length test is a short cut: a detail it no longer takes goes to the exact size test, "
        "which keeps it too (83 characters escape to at most 996 bytes)"
    ),
    ("model", "60:50 12 -> 13"): "the same short cut, narrowed: the exact size test answers the same",
    ("model", "68:4 remove statement"): "the loop always returns: the detail was over the budget it counts to",
    ("model", "68:4 return None"): "the same unreachable line",
}


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int
    label: str  # "line:col operator"
    source: str


FLIP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
BOUNDARY: dict[type[ast.cmpop], type[ast.cmpop]] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt}
SYMBOL: dict[type[ast.cmpop], str] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}


class Mutator(ast.NodeTransformer):
    """Enumerates mutation sites in traversal order; with `target`, applies only that one."""

    def __init__(self, target: int | None = None) -> None:
        self.target = target
        self.count = 0
        self.labels: list[str] = []

    def _site(self, node: ast.AST, label: str) -> bool:
        """Register a site; True when it is the one to apply."""
        self.labels.append(f"{getattr(node, 'lineno', 0)}:{getattr(node, 'col_offset', 0)} {label}")
        hit = self.count == self.target
        self.count += 1
        return hit

    # Annotations, imports, docstrings and TYPE_CHECKING blocks are not behaviour.
    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is not None:
            node.value = self.visit(node.value)
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        return node

    def visit_Import(self, node: ast.Import) -> ast.AST:
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.returns = node.returns  # not visited
        node.args.defaults = [self.visit(d) for d in node.args.defaults]
        node.args.kw_defaults = [self.visit(d) if d is not None else None for d in node.args.kw_defaults]
        node.body = self._body(node.body)
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        if any(isinstance(b, ast.Name) and b.id == "Protocol" for b in node.bases):
            return node  # a port's declaration
        node.body = self._body(node.body)
        return node

    def visit_Module(self, node: ast.Module) -> ast.AST:
        node.body = self._body(node.body)
        return node

    def _body(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in body:
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                out.append(stmt)  # docstring or `...`
                continue
            if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
                out.append(stmt)
                continue
            removable = isinstance(stmt, ast.Expr | ast.Assign | ast.AugAssign | ast.Raise | ast.Return) and not (
                isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper() for t in stmt.targets)
            )
            if removable and self._site(stmt, "remove statement"):
                out.append(ast.copy_location(ast.Pass(), stmt))
                continue
            out.append(self.visit(stmt))
        return out

    def visit_If(self, node: ast.If) -> ast.AST:
        if self._site(node, "negate if"):
            node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
            return node
        self.generic_visit(node)
        return node

    def visit_While(self, node: ast.While) -> ast.AST:
        if self._site(node, "negate while"):
            node.test = ast.UnaryOp(op=ast.Not(), operand=node.test)
            return node
        self.generic_visit(node)
        return node

    def visit_Return(self, node: ast.Return) -> ast.AST:
        returns_none = node.value is None or (isinstance(node.value, ast.Constant) and node.value.value is None)
        if not returns_none and self._site(node, "return None"):
            node.value = ast.Constant(value=None)
            return node
        self.generic_visit(node)
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        for i, op in enumerate(node.ops):
            for new in (FLIP.get(type(op)), BOUNDARY.get(type(op))):
                if new is not None and self._site(node, f"{SYMBOL[type(op)]} -> {SYMBOL[new]}"):
                    node.ops[i] = new()
                    return node
        self.generic_visit(node)
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        swap = "or" if isinstance(node.op, ast.And) else "and"
        if self._site(node, f"{'and' if swap == 'or' else 'or'} -> {swap}"):
            node.op = ast.Or() if swap == "or" else ast.And()
            return node
        self.generic_visit(node)
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        if isinstance(node.op, ast.Not) and self._site(node, "drop not"):
            return node.operand
        self.generic_visit(node)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        if isinstance(node.op, ast.Add | ast.Sub):
            new: ast.operator = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
            if self._site(node, f"{'+' if isinstance(node.op, ast.Add) else '-'} swapped"):
                node.op = new
                return node
        self.generic_visit(node)
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        if isinstance(node.op, ast.Add | ast.Sub) and self._site(node, "augmented +/- swapped"):
            node.op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
            return node
        self.generic_visit(node)
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        value = node.value
        if isinstance(value, bool):
            if self._site(node, f"{value} -> {not value}"):
                return ast.copy_location(ast.Constant(value=not value), node)
        elif isinstance(value, int):
            for delta in (1, -1):
                if self._site(node, f"{value} -> {value + delta}"):
                    return ast.copy_location(ast.Constant(value=value + delta), node)
        return node


def mutants(module: str) -> Iterator[Mutant]:
    path = DOMAIN / f"{module}.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    census = Mutator()
    census.visit(copy.deepcopy(tree))
    for index, label in enumerate(census.labels):
        mutator = Mutator(target=index)
        mutated = ast.fix_missing_locations(mutator.visit(copy.deepcopy(tree)))
        assert isinstance(mutated, ast.Module)
        yield Mutant(module, index, label, ast.unparse(mutated))


# -- running one mutant (in the child interpreter) ---------------------------------------------


class _SwappedSource(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, fullname: str, source: str, origin: str) -> None:
        self._fullname, self._source, self._origin = fullname, source, origin

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self._fullname:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=self._origin)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        module.__file__ = self._origin
        exec(compile(self._source, self._origin, "exec"), module.__dict__)  # noqa: S102 - the point


def _run_child(module: str, source_file: str, pytest_args: list[str]) -> int:
    import pytest

    origin = str(DOMAIN / f"{module}.py")
    sys.meta_path.insert(0, _SwappedSource(f"{PACKAGE}.{module}", Path(source_file).read_text(), origin))
    return int(pytest.main(pytest_args))


# -- the run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    mutant: Mutant
    killed: bool
    timed_out: bool


def _pytest_args(module: str, tests: list[str] | None) -> list[str]:
    chosen = tests if tests is not None else TESTS.get(module, OTHER_TESTS)
    return ["-x", "-q", "--no-header", "-W", "ignore::pytest.PytestConfigWarning", *chosen]


def run_mutant(mutant: Mutant, tests: list[str] | None) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(mutant.source)
        source_file = handle.name
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    command = [sys.executable, "-m", "benchmarks.mutation", "--child", mutant.module, source_file, "--"]
    try:
        completed = subprocess.run(
            [*command, *_pytest_args(mutant.module, tests)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Result(mutant, killed=True, timed_out=True)
    finally:
        os.unlink(source_file)
    if completed.returncode == 5:  # no tests collected: the run itself is broken
        raise RuntimeError(f"pytest exited {completed.returncode} for {mutant.module} {mutant.label}")
    return Result(mutant, killed=completed.returncode != 0, timed_out=False)


def _baseline(module: str, tests: list[str] | None) -> None:
    """The unmutated module must pass its tests, or every mutant would look killed."""
    source = (DOMAIN / f"{module}.py").read_text()
    result = run_mutant(Mutant(module, -1, "original", source), tests)
    if result.killed:
        raise SystemExit(f"the tests of {module} fail without any mutation: fix them first")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        module, source_file, _, *pytest_args = argv[1:]
        return _run_child(module, source_file, pytest_args)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("modules", nargs="*", help="domain modules (default: every one)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--tests", help="run every mutant against these test paths instead (space-separated)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target module scores below 90 %%")
    args = parser.parse_args(argv)
    modules = args.modules or sorted(p.stem for p in DOMAIN.glob("*.py") if p.stem != "__init__")
    tests = args.tests.split() if args.tests else None
    started = time.monotonic()
    below = False
    survivors: list[tuple[Mutant, str | None]] = []
    print(f"{'module':<12} {'mutants':>7} {'killed':>6} {'survived':>8} {'equiv.':>6} {'score':>6}")
    for module in modules:
        _baseline(module, tests)
        all_mutants = list(mutants(module))
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(lambda m: run_mutant(m, tests), all_mutants))
        killed = sum(r.killed for r in results)
        equivalent = [r for r in results if not r.killed and (module, r.mutant.label) in EQUIVALENT]
        alive = [r for r in results if not r.killed and (module, r.mutant.label) not in EQUIVALENT]
        judged = len(results) - len(equivalent)
        score = killed / judged if judged else 1.0
        print(
            f"{module:<12} {len(results):>7} {killed:>6} {len(alive) + len(equivalent):>8} "
            f"{len(equivalent):>6} {score:>6.0%}",
            flush=True,
        )
        survivors.extend((r.mutant, None) for r in alive)
        if module in TARGETS and score < 0.9:
            below = True
    if survivors:
        print("\nsurvivors (not judged equivalent):")
        for mutant, _ in survivors:
            line = int(mutant.label.split(":", 1)[0])
            text = (DOMAIN / f"{mutant.module}.py").read_text().splitlines()[line - 1].strip() if line else ""
            print(f"  {mutant.module}.py:{mutant.label:<28} {text}")
    print(f"\n{time.monotonic() - started:.0f} s, {args.jobs} jobs")
    return 1 if args.check and below else 0


if __name__ == "__main__":
    sys.exit(main())
