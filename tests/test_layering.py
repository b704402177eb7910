"""Who may import whom: every module's imports, read from its source, against the ordered rooms.

A room is a top-level module or package of figsearch. Each room may import only rooms listed
before it (a lower layer), never one after it, and the stages that work side by side on the
same records (ocr, link, embed) do not import each other. Imports under ``if TYPE_CHECKING:``
are left out: they never run. Function-level imports count like any other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import figsearch

PACKAGE = Path(figsearch.__file__).parent

#: lowest first. The generic helpers are the floor; store sits below ingest because ingest's
#: runner writes into it (the store itself knows records only); pipeline (the write path), api
#: (the public Python API over the write path, the search service and the evaluation), server and
#: cli are the ways in from the outside.
ROOMS = [
    ("errors",),
    ("fsutil", "extras", "registry"),
    ("records",),
    ("figsearch",),  # the package's own __init__: its version, and figsearch.api's names loaded lazily
    ("tone",),  # paper to white, ink to black: below imaging, which may call it for what ingest stores
    ("imaging",),
    ("store",),
    ("ingest",),
    ("ocr", "link", "embed"),  # side by side: none imports another
    ("index",),
    ("search",),
    ("evaluate",),
    ("train",),  # trains drawing encoders from a collection: uses embed, store and evaluate
    ("pipeline",),
    ("api",),
    ("server",),
    ("cli",),
    ("__main__",),
]
LEVEL = {room: level for level, rooms in enumerate(ROOMS) for room in rooms}

#: (importing module, imported module) -> why it is allowed for now; an entry that no longer
#: matches an import fails the test, so the list only shrinks
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("figsearch", "figsearch.api"): "figsearch.open/build/...: the package re-exports the public API on first "
    "use (PEP 562 __getattr__), so that `import figsearch` stays light; no module api imports imports the package (test_no_import_cycles)",
}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts).removesuffix(".__init__")
        modules[name] = path
    return modules


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The figsearch module an import names (a name inside a module resolves to the module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(child) for stmt in node.body for child in ast.walk(stmt)}
    return skipped


def _imports(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    skipped = _type_checking_nodes(tree)
    found = set()
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # "from figsearch import pipeline" imports the module figsearch.pipeline
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for name in names:
            if name == "figsearch" or name.startswith("figsearch."):
                target = _resolve(name)
                if target and target != module:
                    found.add(target)
    return found


GRAPH = {module: _imports(module) for module in MODULES}


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "figsearch"


def test_every_room_is_placed():
    unplaced = sorted({_room(m) for m in MODULES} - set(LEVEL))
    assert not unplaced, f"rooms missing from ROOMS in {__file__}: {unplaced} (place each by what it may import)"


def test_no_import_from_a_lower_room_to_a_higher_one():
    wrong, used = [], set()
    for module, targets in sorted(GRAPH.items()):
        for target in sorted(targets):
            source_room, target_room = _room(module), _room(target)
            if source_room == target_room or source_room not in LEVEL or target_room not in LEVEL:
                continue
            if LEVEL[target_room] < LEVEL[source_room]:
                continue
            if (module, target) in EXCEPTIONS:
                used.add((module, target))
                continue
            side = "beside" if LEVEL[target_room] == LEVEL[source_room] else "above"
            wrong.append(f"{module} imports {target} ({target_room} is {side} {source_room})")
    assert not wrong, "imports against the layering:\n  " + "\n  ".join(wrong)
    stale = sorted(set(EXCEPTIONS) - used)
    assert not stale, f"exceptions no import needs any more (remove them from EXCEPTIONS): {stale}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
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
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles():
    cycles = _cycles(GRAPH)
    assert not cycles, "modules that import each other (directly or through others):\n  " + "\n  ".join(
        " <-> ".join(c) for c in cycles
    )


@pytest.mark.parametrize(
    "graph, expected",
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(graph, expected):
    assert _cycles(graph) == expected


def test_the_import_reader_sees_what_the_checks_rely_on():
    # function-level imports count, TYPE_CHECKING ones do not, "from figsearch import x" is module x
    assert "figsearch.ocr.split" in GRAPH["figsearch.pipeline.signs"]  # imported inside a function
    assert "figsearch.store.collection" not in GRAPH["figsearch.store.base"]  # only under TYPE_CHECKING
    assert "figsearch.pipeline" in GRAPH["figsearch.cli.ingest_cmd"]
