"""No import cycles inside camroll: a module never needs itself back, and no two rooms (the
packages of the layout: analyze/, people/, api/...) import each other, beyond the debts listed.

Imports are read from the source (no module is imported). Every import counts, function-level
ones too: moving an import into a function hides a cycle from the interpreter, not from the
design. Only `if TYPE_CHECKING:` blocks are skipped, as they never run.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "camroll"
# Alembic loads these as scripts, by path: they are not modules of the package.
NOT_MODULES = ("db/migrations",)

# Cycles that remain, each with why; a new one fails. Remove an entry once its cycle is gone.
KNOWN_MODULE_CYCLES: set[frozenset[str]] = set()
KNOWN_ROOM_PAIRS: set[frozenset[str]] = set()
# The cycles issue 14 named, and those broken since: gone, and must stay gone.
BROKEN = [
    {"analyze", "people"},
    {"ingest", "jobs"},
    {"api", "web"},
    {"api", "jobs"},
    {"consent", "jobs"},
    {"analyze", "media"},
    # Model sessions moved below both to camroll/inference/.
    {"analyze", "places"},
    {"analyze", "search"},
    # Indexing a library upgraded across the index revision: camroll/startup.py, above both.
    {"db", "search"},
    # crypto/ is pure cryptography and the encrypted column type, below the schema (which gives
    # it a reader of the wrapped keys); storing the keys is camroll/keyring.py, above both.
    {"crypto", "db"},
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent)
        if any(part in rel.as_posix() for part in NOT_MODULES):
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(), str(path)))
    return {m for m in out if m in modules and m not in ("camroll", name)}


@cache
def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.add(member)
                    if member == node:
                        break
                if len(members) > 1:
                    found.append(frozenset(members))
    return found


def _room(module: str) -> str:
    # camroll/app.py is the room "app", camroll/people/ is "people"; __init__ is "camroll".
    return [*module.split("."), module][1]


def test_no_module_imports_itself_back() -> None:
    new = [sorted(c) for c in _cycles(_graph()) if c not in KNOWN_MODULE_CYCLES]
    assert new == [], f"import cycles between modules: {new}"


def test_no_two_rooms_import_each_other() -> None:
    rooms: dict[str, set[str]] = {}
    for module, deps in _graph().items():
        rooms.setdefault(_room(module), set()).update(_room(d) for d in deps)
    pairs = {
        frozenset({a, b}) for a, deps in rooms.items() for b in deps if a != b and a in rooms[b]
    }
    for pair in BROKEN:
        assert pair not in pairs, f"{' and '.join(sorted(pair))} import each other again"
    new = sorted(sorted(p) for p in pairs - KNOWN_ROOM_PAIRS)
    assert new == [], f"rooms that import each other: {new}"


def test_the_reader_sees_function_level_imports_and_skips_type_checking(tmp_path: Path) -> None:
    """The checker itself: a cycle through a function-level import is found; an import only
    under TYPE_CHECKING is not an edge."""
    pkg = tmp_path / "camroll"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text("def f():\n    from camroll.b import y\n")
    (pkg / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from camroll.a import x\n"
    )
    modules = {"camroll": pkg, "camroll.a": pkg / "a", "camroll.a.x": pkg, "camroll.b": pkg}
    graph = {
        "camroll.a.x": _imports("camroll.a.x", pkg / "a" / "x.py", modules),
        "camroll.b": _imports("camroll.b", pkg / "b.py", modules),
    }
    assert graph == {"camroll.a.x": {"camroll.b"}, "camroll.b": set()}
    graph["camroll.b"] = _imports("camroll.b", _write(pkg / "b.py", "from .a import x\n"), modules)
    assert _cycles(graph) == [frozenset({"camroll.a.x", "camroll.b"})]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
