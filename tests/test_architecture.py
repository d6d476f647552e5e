"""The rules of the house (ARCHITECTURE.md), checked on the source: imports point down the
layers, no cycles, no torch below `gru.ops`, nobody reads another module's private names, and
modules and functions stay small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "gru"

# Each part of the package and its layer: a module may import parts of a lower layer, or
# modules of its own part. `gru` itself (the package's __init__) only re-exports.
LAYERS = {
    "gru._io": 0,
    "gru._extras": 0,
    "gru.reference": 0,
    "gru.kernels": 1,
    "gru.ops": 2,
    "gru.nn": 3,
    "gru.checkpoint": 4,
    "gru.data": 4,
    "gru.interop": 4,
    "gru.models": 4,
    "gru.nade": 4,
    "gru.recall": 4,
    "gru.seq2seq": 4,
    "gru.viz": 5,
    "gru.training": 6,
    "gru.estimators": 7,
    "gru.tasks": 8,
    "gru.cli": 9,
    "gru.__main__": 10,
}
NO_TORCH = ("gru.reference", "gru.kernels")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
LONG_MODULES_ALLOWED = {"gru.reference"}  # the oracle: every equation in one place, by design


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def _part(module: str) -> str | None:
    """The entry of LAYERS that ``module`` belongs to (None for the package itself)."""
    for part in sorted(LAYERS, key=len, reverse=True):
        if module == part or module.startswith(part + "."):
            return part
    return None


def _imports(module: str) -> set[str]:
    """Every gru module that ``module`` imports, at the top or inside a function."""
    found = set()
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "gru")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            if base.split(".")[0] != "gru":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return found - {module}


def test_every_module_has_a_layer():
    missing = [m for m in MODULES if m != "gru" and _part(m) is None]
    assert not missing, f"add these to LAYERS (and to ARCHITECTURE.md): {missing}"


def test_imports_point_down():
    wrong = []
    for module in MODULES:
        part = _part(module)
        if part is None:
            continue
        for imported in _imports(module):
            other = _part(imported)
            if imported == "gru" or other == part:
                continue  # the package's re-exports (__version__), or its own part
            if other is None or LAYERS[other] >= LAYERS[part]:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, "a lower layer imports a higher one:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles():
    graph = {m: {i for i in _imports(m) if i in MODULES and i != "gru"} for m in MODULES}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            # A package's __init__ re-exporting its own submodules is not a cycle of logic.
            if node == nxt.rpartition(".")[0] and MODULES[node].name == "__init__.py":
                continue
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*path[path.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("part", NO_TORCH)
def test_no_torch_below_ops(part):
    for module, tree in TREES.items():
        if _part(module) != part:
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "torch" for n in names), f"{module} imports torch"


def _defined_private_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def _is_own_object(node: ast.AST) -> bool:
    """``self``, ``cls`` or ``super()``: a class reads its own (inherited) members."""
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    return isinstance(node, ast.Call) and getattr(node.func, "id", None) == "super"


def test_no_private_names_across_modules():
    """A module reads only its own ``_private`` names: none imported from another module, and
    no ``obj._name`` where ``_name`` belongs to another gru module (a class's own members,
    inherited ones included, are its own)."""
    own = {m: _defined_private_names(t) for m, t in TREES.items()}
    everyone = set().union(*own.values())
    wrong = []
    for module, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("gru"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        wrong.append(f"{module}: from {node.module} import {alias.name}")
            elif (
                isinstance(node, ast.Attribute)
                and not _is_own_object(node.value)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and node.attr in everyone
                and node.attr not in own[module]
            ):
                wrong.append(f"{module}:{node.lineno}: .{node.attr}")
    assert not wrong, "private names read across modules:\n" + "\n".join(sorted(wrong))


def test_modules_are_short():
    long = []
    for module, path in MODULES.items():
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES and module not in LONG_MODULES_ALLOWED:
            long.append(f"{module}: {lines} lines")
    assert not long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(long)


def test_functions_are_short():
    long = []
    for module, tree in TREES.items():
        if module in LONG_MODULES_ALLOWED:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = node.end_lineno - start + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {length} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)
