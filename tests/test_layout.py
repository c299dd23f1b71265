"""The house's rule, checked on the code itself: imports between top-level folders point only down the floors
(telemetry, memory, envs at the bottom; cluster on top) and no module imports itself back through others.
Every import counts, including those inside functions (a deferred import is still a dependency); only
`if TYPE_CHECKING:` blocks are left out."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOORS = {"envs": 0, "memory": 0, "telemetry": 0, "agent": 1, "learner": 2, "actors": 3, "cluster": 4}
"""Each package's floor: a module may import from its own folder or from a lower floor only."""


def _imports(path: Path) -> set[str]:
    """The ami.* modules a file imports (as 'folder.module' or 'folder')."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for child in node.body for n in ast.walk(child)}
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "ami" else [a.name for a in node.names]
            out |= {n.removeprefix("ami.") for n in names if n.startswith("ami.") or node.module == "ami"}
        elif isinstance(node, ast.Import):
            out |= {a.name.removeprefix("ami.") for a in node.names if a.name.startswith("ami.")}
    return out


def _graph() -> dict[str, set[str]]:
    """module ('folder.name') -> the modules it imports (a package import means its __init__)."""
    mods = {f"{p.parent.name}.{p.stem}": p for folder in FLOORS for p in (ROOT / folder).glob("*.py")}
    graph = {}
    for mod, path in mods.items():
        deps = set()
        for dep in _imports(path):
            deps.add(dep if dep in mods else f"{dep}.__init__")
        graph[mod] = {d for d in deps if d in mods and d != mod}
    return graph


def test_imports_point_only_down_the_floors() -> None:
    up = [(mod, dep) for mod, deps in _graph().items() for dep in deps
          if FLOORS[dep.split(".")[0]] > FLOORS[mod.split(".")[0]]
          or (FLOORS[dep.split(".")[0]] == FLOORS[mod.split(".")[0]] and dep.split(".")[0] != mod.split(".")[0])]
    assert not up, up
    folders = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"ami", "tests"}
    assert set(FLOORS) == folders, "a folder without a floor"


def test_no_import_cycles() -> None:
    graph, seen, cycles = _graph(), set(), []

    def visit(mod: str, path: list[str]) -> None:
        if mod in path:
            cycles.append(path[path.index(mod):] + [mod])
            return
        if mod in seen:
            return
        seen.add(mod)
        for dep in sorted(graph[mod]):
            visit(dep, [*path, mod])

    for mod in sorted(graph):
        visit(mod, [])
    assert not cycles, cycles
