"""The import graph of ``src/heron`` stays acyclic and layered (see docs/architecture.md).

The layer and independence contracts live in pyproject.toml (``[tool.importlinter]``);
their ``ignore_imports`` lists name the known violations still to move (issue 10).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import grimp

import heron

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(heron.__file__).resolve().parents[1]


def test_import_linter_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while not comp or v not in comp:
                comp.add(stack.pop())
            if len(comp) > 1:
                found.append(comp)

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_strongly_connected_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [{"a", "b", "c"}]


def test_no_import_cycles_in_heron() -> None:
    # grimp counts imports under TYPE_CHECKING and inside functions: a cycle in the
    # design is a cycle, even when Python would not trip over it at import time.
    built = grimp.build_graph("heron", cache_dir=None)
    graph = {m: built.find_modules_directly_imported_by(m) for m in built.modules}
    assert strongly_connected(graph) == []


# A statement naming a table: what only store/ may write (docs/architecture.md, "Storage seam").
_SQL = re.compile(
    r"\b(SELECT\s[^;]*?\sFROM\s+\w+|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
    r"|CREATE\s+(OR\s+REPLACE\s+)?TABLE|ON\s+CONFLICT|RETURNING\s+\w+)\b",
    re.IGNORECASE,
)


def _code_strings(source: str) -> list[str]:
    """The string literals of a module, docstrings left out (they may say "returning")."""
    tree = ast.parse(source)
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
    ]


def sql_outside_store(server_dir: Path) -> list[str]:
    """SQL statements in string literals of modules outside ``store/``. (The SQL
    fingerprinter in ``analyze/`` parses statements but holds none.)"""
    store = server_dir / "store"
    return [
        f"{path.relative_to(server_dir)}: {m.group(0)[:60]!r}"
        for path in sorted(server_dir.rglob("*.py"))
        if store not in path.parents
        for text in _code_strings(path.read_text())
        for m in _SQL.finditer(text)
    ]


def test_no_sql_outside_the_store() -> None:
    assert sql_outside_store(SRC / "heron" / "server") == []


def test_sql_outside_the_store_is_found(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "ok.py").write_text('Q = "SELECT count(*) FROM spans"\n')
    (tmp_path / "query.py").write_text(
        '"""Rows returning plain tuples."""\n# select a from t\nQ = """SELECT name\n  FROM spans"""\n'
    )
    assert sql_outside_store(tmp_path) == ["query.py: 'SELECT name\\n  FROM spans'"]
