"""Our modules import each other without cycles and along the layering of docs/design.md.

Why static: importing every module would need torch, ray and deepsparse and would hide
function-level imports until they run. The graph is read with ``ast`` from the source files:
module-level and function-level imports, relative imports resolved; third-party modules are
left out. ``import a.b.c`` is an edge to ``a.b.c`` only (not to its parent packages, whose
``__init__`` Python runs first but which hold nothing the importer uses); ``from a.b import
c`` is an edge to ``a.b.c`` when ``c`` is a submodule and to ``a.b`` otherwise.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "search_spaces", "trainables", "orchestrator", "reports")

# The layering of docs/design.md: which of our other packages each package may import.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "common": frozenset(),
    "search_spaces": frozenset({"common"}),
    "trainables": frozenset({"search_spaces", "common"}),
    "reports": frozenset({"common"}),
    "orchestrator": frozenset(PACKAGES),
}

# Known exceptions while another branch fixes them: (importer, imported) pairs, to be emptied
# again, not grown. Both are empty since the result columns moved to common/ and the pruning
# methods stopped importing their package. An entry that no longer matches an import fails the
# test, so it cannot outlive its fix.
KNOWN_LAYER_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()
KNOWN_CYCLE_EDGES: frozenset[tuple[str, str]] = frozenset()


def our_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of our packages."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([name] if name else [])])


def _ours(name: str, modules: dict[str, Path]) -> str | None:
    """The module of ours ``name`` refers to (itself or its longest known prefix), else None."""
    if name.split(".")[0] not in PACKAGES:
        return None
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, modules: dict[str, Path]) -> set[str]:
    """Our modules that ``module`` imports anywhere in its file."""
    path = modules[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = _resolve_relative(module, path.name == "__init__.py", node.level,
                                         node.module)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                     for a in node.names]
        else:
            continue
        targets.update(t for t in (_ours(n, modules) for n in names) if t)
    return targets


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {m: imports_of(m, modules) for m in modules}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, each sorted; only those that hold a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def shortest_cycle(graph: dict[str, set[str]], component: Iterable[str]) -> list[str]:
    """One shortest cycle through the component's first module, as a closed path."""
    members = set(component)
    start = min(members)
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"no cycle through {start} in {sorted(members)}")


def without(graph: dict[str, set[str]], edges: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    drop = set(edges)
    return {m: {t for t in ts if (m, t) not in drop} for m, ts in graph.items()}


# --------------------------------------------------------------------------------------- tests


def test_the_graph_reader_sees_every_kind_of_import(tmp_path):
    files = {
        "common/__init__.py": "",
        "common/atomic.py": "import os\n",
        "trainables/__init__.py": "",
        "trainables/a.py": "from . import b\nfrom .b import helper\n",
        "trainables/b.py": "def f():\n    import trainables.sub.c\n",
        "trainables/sub/__init__.py": "from .. import a\n",
        "trainables/sub/c.py": "from trainables.sub import THING\nimport numpy\n"
                               "from common.atomic import atomic_path\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(our_modules(tmp_path))
    assert graph == {
        "common": set(),
        "common.atomic": set(),
        "trainables": set(),
        "trainables.a": {"trainables.b"},
        "trainables.b": {"trainables.sub.c"},
        "trainables.sub": {"trainables.a"},
        "trainables.sub.c": {"trainables.sub", "common.atomic"},
    }
    assert strongly_connected(graph) == [
        ["trainables.a", "trainables.b", "trainables.sub", "trainables.sub.c"],
    ]
    assert shortest_cycle(graph, strongly_connected(graph)[0]) == [
        "trainables.a", "trainables.b", "trainables.sub.c", "trainables.sub", "trainables.a",
    ]


def test_no_import_cycles():
    graph = import_graph(our_modules())
    stale = sorted(e for e in KNOWN_CYCLE_EDGES if e[1] not in graph.get(e[0], set()))
    assert not stale, f"no longer imported, remove from KNOWN_CYCLE_EDGES: {stale}"
    graph = without(graph, KNOWN_CYCLE_EDGES)
    cycles = [
        " -> ".join(cycle) + (f"  (strongly connected: {', '.join(c)})"
                              if len(set(cycle)) < len(c) else "")
        for c in strongly_connected(graph)
        for cycle in [shortest_cycle(graph, c)]
    ]
    assert not cycles, "import cycles:\n  " + "\n  ".join(cycles)


def test_packages_import_only_the_layers_below_them():
    graph = import_graph(our_modules())
    found = {
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if (owner := target.split(".")[0]) != module.split(".")[0]
        and owner not in MAY_IMPORT[module.split(".")[0]]
    }
    stale = sorted(KNOWN_LAYER_VIOLATIONS - found)
    assert not stale, f"no longer imported, remove from KNOWN_LAYER_VIOLATIONS: {stale}"
    new = sorted(found - KNOWN_LAYER_VIOLATIONS)
    assert not new, "imports against docs/design.md's layering:\n  " + "\n  ".join(
        f"{m} imports {t} ({m.split('.')[0]} may import: "
        f"{', '.join(sorted(MAY_IMPORT[m.split('.')[0]])) or 'nothing of ours'})"
        for m, t in new
    )


# The parts of trainables/ and which other parts each may import (docs/design.md): data and
# models at the bottom, checkpoints on models, the loops on those, the entry points on all.
# A part not listed here (a module at the top of trainables/) is not checked.
TRAINABLES_MAY_IMPORT: dict[str, frozenset[str]] = {
    "registry": frozenset(),
    "models": frozenset({"registry"}),
    "datasets": frozenset({"registry"}),
    "checkpoints": frozenset({"models", "registry"}),
    "training": frozenset({"models", "datasets", "checkpoints", "registry"}),
    "pruning": frozenset({"training", "models", "registry"}),
    "speed": frozenset({"training", "models", "datasets", "checkpoints", "registry"}),
}


def test_the_parts_of_trainables_import_only_the_parts_below_them():
    graph = import_graph(our_modules())

    def part(module: str) -> str | None:
        names = module.split(".")
        return names[1] if names[0] == "trainables" and len(names) > 1 else None

    found = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if (src := part(module)) in TRAINABLES_MAY_IMPORT
        for target in targets
        if (dst := part(target)) and dst != src and dst not in TRAINABLES_MAY_IMPORT[src]
    )
    assert not found, "imports against trainables' layering (docs/design.md):\n  " + \
        "\n  ".join(found)
