"""The doors (api/, web/, cli.py, dav/) are thin: they call services and translate, and build no
queries of their own. Read from the source, like tests/test_import_cycles.py: a door that
imports SQLAlchemy's query builders, runs a statement on the session or looks a row up by id
fails here."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "camroll"
DOORS = ("api", "web", "cli.py", "dav")
BUILDERS = {"select", "update", "delete", "insert", "text", "func", "and_", "or_", "aliased"}
# `session.get(Model, id)` too: a row looked up by id in a door is one whose owner check lives
# there, and each door would have to remember it; services answer "the owner's X" instead.
RUNS = {"execute", "scalars", "scalar", "query", "get"}
# Left to do, each with why; a new one fails. Remove an entry once its door is thin.
KNOWN: set[str] = set()


def _queries(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            found += [f"imports {a.name}" for a in node.names if a.name in BUILDERS]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in RUNS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in ("session", "s")
        ):
            found.append(f"line {node.lineno}: session.{node.func.attr}")
    return found


def test_the_doors_hold_no_queries() -> None:
    doors = {}
    for part in DOORS:
        root = PACKAGE / part
        for path in sorted([root] if root.suffix else root.rglob("*.py")):
            found = _queries(path)
            if found:
                doors[path.relative_to(PACKAGE).as_posix()] = found
    assert {d: q for d, q in doors.items() if d not in KNOWN} == {}
    assert set(doors) >= KNOWN, f"thin now, drop from KNOWN: {sorted(KNOWN - set(doors))}"
