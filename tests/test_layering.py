"""The package's import rules, checked on the source (every ``import`` in the AST, also inside functions).

1. Layers import only downward: errors -> checks -> options -> files -> yaml_files -> store -> data -> models
   -> training -> testing -> study -> report -> cli.
2. No import cycle between modules of the package, not even through an import inside a function: a
   cycle means a third module is missing. A module's edges are the modules it names in ``import`` and
   ``from ... import`` statements (``from pkg import name`` is an edge to ``pkg.name`` when that is a
   module, else to ``pkg``); the implicit import of a parent package's ``__init__`` is not an edge.
3. No module uses another module's private names: ``from mgtune.a import _b`` and ``mgtune.a._b`` (or
   ``alias._b`` for an imported module) are refused, whatever ``_b`` is, except that a private
   *module* (``mgtune.models._blocks``, ``mgtune.study._ray_parts``) may be imported by the modules of
   the package that holds it (``mgtune.models.*``, ``mgtune.study.*``). Dunder names are not private.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "mgtune"
ORDER = ["errors", "checks", "options", "files", "processes", "yaml_files", "store", "data", "models", "training",
         "testing", "study", "report", "cli"]


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "mgtune" or len(parts) < 2:
        return None
    return parts[1].removesuffix(".py")


def _module_name(path: Path, root: Path = PKG) -> str:
    parts = ["mgtune", *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(root: Path = PKG) -> dict[str, Path]:
    return {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _imports(path: Path, modules: dict[str, Path], root: Path = PKG) -> Iterator[tuple[str, str | None, int]]:
    """``(module, name or None, line)`` for every import of a package module anywhere in the file."""
    own = _module_name(path, root)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "mgtune":
                    yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "mgtune":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    yield sub, None, node.lineno
                else:
                    yield base, alias.name, node.lineno


def _graph(root: Path = PKG) -> dict[str, set[str]]:
    modules = _modules(root)
    return {mod: {m for m, _, _ in _imports(path, modules, root) if m in modules and m != mod}
            for mod, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def mutual_pairs(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Pairs of modules that import each other directly."""
    return sorted((a, b) for a in graph for b in graph[a] if a < b and a in graph.get(b, ()))


def _private_uses(path: Path, modules: dict[str, Path], root: Path = PKG) -> list[str]:
    own = _module_name(path, root)
    own_package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found = []

    def private_module_ok(module: str) -> bool:
        parts = module.split(".")
        for i, part in enumerate(parts):
            if _private(part):
                holder = ".".join(parts[:i])
                if not (own_package == holder or own_package.startswith(holder + ".")):
                    return False
        return True

    aliases: dict[str, str] = {}  # local name -> package module it is bound to
    for module, name, line in _imports(path, modules, root):
        if module != own and not private_module_ok(module):
            found.append(f"{own}:{line} imports the private module {module}")
        if name is not None and _private(name) and module != own:
            found.append(f"{own}:{line} imports the private name {module}.{name}")
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and alias.name in modules:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mgtune":
            for alias in node.names:
                if f"{node.module}.{alias.name}" in modules:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        chain = [node.attr]
        inner: ast.expr = node.value
        while isinstance(inner, ast.Attribute):
            chain.append(inner.attr)
            inner = inner.value
        if not isinstance(inner, ast.Name):
            continue
        chain.reverse()
        start = "mgtune" if inner.id == "mgtune" else aliases.get(inner.id)
        if start is None:
            continue
        dotted = start
        for part in chain:
            if _private(part) and dotted != own and not (f"{dotted}.{part}" in modules
                                                         and private_module_ok(f"{dotted}.{part}")):
                found.append(f"{own}:{node.lineno} uses the private name {dotted}.{part}")
                break
            dotted = f"{dotted}.{part}"
            if dotted not in modules:
                break
    return found


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_imports_only_downward(path: Path) -> None:
    own = _layer("mgtune." + path.relative_to(PKG).with_suffix("").as_posix().replace("/", "."))
    if own not in ORDER:
        return
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            dep = _layer(name)
            if dep in ORDER:
                assert ORDER.index(dep) <= ORDER.index(own), f"{path.name}: {own} imports {dep}"


def test_no_import_cycle() -> None:
    graph = _graph()
    assert mutual_pairs(graph) == [], "modules that import each other"
    assert _cycles(graph) == [], "import cycles"


def test_no_module_uses_another_modules_private_names() -> None:
    modules = _modules()
    found = [msg for path in modules.values() for msg in _private_uses(path, modules)]
    assert found == []


def test_the_checks_catch_a_function_level_cycle_and_a_private_import(tmp_path: Path) -> None:
    root = tmp_path / "mgtune"
    (root / "a").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "a" / "__init__.py").write_text("")
    (root / "a" / "x.py").write_text("from mgtune.a.y import _h\n")
    (root / "a" / "y.py").write_text("def f():\n    from mgtune.a import x\n    return x._g\n")
    graph = _graph(root)
    assert mutual_pairs(graph) == [("mgtune.a.x", "mgtune.a.y")] and _cycles(graph) == [["mgtune.a.x", "mgtune.a.y"]]
    modules = _modules(root)
    assert [m.split(" ", 1)[1] for p in modules.values() for m in _private_uses(p, modules, root)] == [
        "imports the private name mgtune.a.y._h", "uses the private name mgtune.a.x._g"]


def test_import_mgtune_is_light() -> None:
    code = ("import sys, mgtune, mgtune.training, mgtune.cli; "
            "print(sorted(m for m in ('ray', 'optuna', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("modules", ["mgtune.store", "mgtune.report", "mgtune.store, mgtune.report.card_data"])
def test_reading_records_and_reports_loads_neither_torch_nor_ray(modules: str) -> None:
    """A process that only reads what runs left (``mgtune report``) never loads the training stack."""
    code = (f"import sys, {modules}; "
            "print(sorted(m for m in ('torch', 'ray', 'optuna', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_store_imports_no_layer_above_it() -> None:
    for path in sorted((PKG / "store").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for name in names:
                    assert name.split(".")[0] not in ("torch", "ray", "optuna"), f"{path.name} imports {name}"
