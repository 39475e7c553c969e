"""The house rules of the code: imports only run downward, and nothing imports in a circle.

Read from the source with ``ast``: every import anywhere in a module counts for the layers
(a function-level import is still a dependency); the import-time graph (module level,
outside ``TYPE_CHECKING``) must have no cycle.
"""

import ast
import importlib.util
from pathlib import Path

import pytest

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = pytest.mark.xdist_group("app/test_layers.py")

ROOT = "neurorvq_stream"
#: What each part may import (besides itself); the application (the root) may import all.
ALLOWED = {
    "engines": set(),
    "models": set(),
    "decoders": {"engines"},
    "streamer": {"engines", "decoders"},
    "gui": {"engines", "decoders", "streamer"},
    "training": {"engines", "decoders", "streamer"},
    "report": {"engines", "decoders", "streamer"},
}
#: The root's module that every part's ``__init__`` calls first; it imports nothing.
FOLDER_CHECK = f"{ROOT}._folders"


def _modules() -> dict[str, Path]:
    """Every module of the installed package, by dotted name, from its real file."""
    found = {}
    for part in (None, *ALLOWED):
        name = ROOT if part is None else f"{ROOT}.{part}"
        folder = Path(importlib.util.find_spec(name).origin).parent
        files = folder.glob("*.py") if part is None else folder.rglob("*.py")
        for path in files:
            rel = path.relative_to(folder).with_suffix("").parts
            dotted = ".".join((name, *rel))
            found[dotted.removesuffix(".__init__")] = path
    return found


def _imports(module: str, path: Path, import_time_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    skip: set[int] = set()
    if import_time_only:
        for node in ast.walk(tree):
            guarded = isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            inside = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            if guarded or inside:
                skip |= {id(n) for n in ast.walk(node)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names |= {base} | {f"{base}.{a.name}" for a in node.names}
    return {n for n in names if n == ROOT or n.startswith(f"{ROOT}.")}


def _part(module: str) -> str | None:
    """The part a module belongs to (None for the application at the root)."""
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 and pieces[1] in ALLOWED else None


@pytest.fixture(scope="module")
def modules() -> dict[str, Path]:
    return _modules()


def test_imports_only_run_downward(modules):
    upward = []
    for module, path in modules.items():
        part = _part(module)
        if part is None:
            continue
        for target in _imports(module, path, import_time_only=False):
            other = _part(target)
            shared = target == FOLDER_CHECK or target.startswith(f"{FOLDER_CHECK}.")
            if other != part and other not in ALLOWED[part] and not shared:
                upward.append(f"{module} imports {target}")
    assert upward == []
    assert _imports(FOLDER_CHECK, modules[FOLDER_CHECK], import_time_only=False) == set()


def test_nothing_imports_in_a_circle(modules):
    # A module's own enclosing packages are already initializing when it runs: not a cycle.
    graph = {m: {t for t in _imports(m, p, import_time_only=True)
                 if t in modules and t != m and not m.startswith(f"{t}.")}
             for m, p in modules.items()}
    done, on_path = set(), []

    def visit(module: str) -> None:
        if module in on_path:
            cycle = [*on_path[on_path.index(module):], module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        on_path.append(module)
        for target in sorted(graph[module]):
            visit(target)
        on_path.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
