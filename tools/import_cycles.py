"""Cycles among the imports of the app code (accounts, common, events, tickets, queueing,
waitlist, claims, monitoring, ticketwar): between modules, and between apps.

Reads the source with ``ast`` (nothing is imported), skipping tests and migrations. By default
only imports at module level count (``if TYPE_CHECKING:`` blocks excepted): an import inside a
function runs when called, after every module is loaded, and is the rare, commented way out.
``--all`` counts those too. Between apps, any module of one importing any module of another is
an edge: the apps must form layers (docs: README, "Architecture"), whatever the modules do.

    python tools/import_cycles.py                 # the cycles, one per line; exit 1 if any
    python tools/import_cycles.py --all           # imports inside functions count too
    python tools/import_cycles.py --graph         # every module and what it imports
    python tools/import_cycles.py --graph --apps  # every app, the apps it imports and through which modules
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("accounts", "common", "events", "tickets", "queueing", "waitlist", "claims", "ticketwar", "monitoring")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """``{dotted name: path}`` of every app module (tests and migrations left out)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if any(p in ("tests", "migrations") or p.startswith("test_") for p in parts):
                continue
            found[_module_name(path)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _all_imports(tree: ast.Module):
    """Every import node, function bodies included (``if TYPE_CHECKING:`` blocks excepted)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node):
            continue
        else:
            stack.extend(ast.iter_child_nodes(node))


def _top_level_imports(tree: ast.Module):
    """Import nodes run when the module loads (module body, ``try`` and plain ``if`` blocks)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and not _is_type_checking(node):
            stack.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            stack.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                stack.extend(handler.body)


def imports_of(name: str, path: Path, known: set[str], *, deferred: bool = False) -> set[str]:
    """The app modules ``name`` imports at module level (and inside functions if ``deferred``)."""
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    walk = _all_imports if deferred else _top_level_imports
    for node in walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from x import y``: y is a submodule of x, or a name defined in x. A package's
            # ``__init__`` is loaded before its submodules anyway: no edge to the package for that.
            candidates = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        for candidate in candidates:
            # The nearest enclosing app module (``a.b.c`` may name a function of ``a.b``).
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
    return targets


def graph(*, deferred: bool = False) -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known, deferred=deferred) for name, path in found.items()}


def app_of(module: str) -> str:
    return module.split(".", 1)[0]


def app_edges(edges: dict[str, set[str]]) -> dict[str, dict[str, set[str]]]:
    """``{app: {app it imports: {"module -> module", ...}}}``: the module graph seen by app."""
    found: dict[str, dict[str, set[str]]] = {app: {} for app in PACKAGES}
    for module, targets in edges.items():
        for target in targets:
            source_app, target_app = app_of(module), app_of(target)
            if source_app != target_app:
                found.setdefault(source_app, {}).setdefault(target_app, set()).add(f"{module} -> {target}")
    return found


def app_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """``{app: {apps it imports}}``."""
    return {app: set(targets) for app, targets in app_edges(edges).items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def main(argv: list[str]) -> int:
    edges = graph(deferred="--all" in argv)
    if "--graph" in argv and "--apps" in argv:
        for app, targets in sorted(app_edges(edges).items()):
            print(f"{app}: {', '.join(sorted(targets)) or '-'}")
            for target in sorted(targets):
                for through in sorted(targets[target]):
                    print(f"    {through}")
        return 0
    if "--graph" in argv:
        for name in sorted(edges):
            print(f"{name}: {', '.join(sorted(edges[name])) or '-'}")
        return 0
    found = cycles(edges) + [["app", *component] for component in cycles(app_graph(edges))]
    for component in found:
        print(" <-> ".join(component))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
