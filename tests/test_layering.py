"""Layers import only downward: data -> models -> training -> study -> report -> cli."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "mgtune"
ORDER = ["errors", "checks", "files", "data", "models", "training", "study", "report", "cli"]


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "mgtune" or len(parts) < 2:
        return None
    return parts[1].removesuffix(".py")


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


def test_import_mgtune_is_light() -> None:
    code = "import sys, mgtune, mgtune.training, mgtune.cli; print(sorted(m for m in ('ray', 'optuna', 'matplotlib') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
