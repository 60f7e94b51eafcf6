"""The package ships whole: every subpackage and the search spaces are in the wheel; a local folder wins."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mgtune.study.search_space import find_search_space

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_lists_every_package_and_maps_the_search_spaces() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "mgtune").rglob("__init__.py")}
    assert set(config["packages"]) == found | {"mgtune.search_spaces"}
    assert config["package-dir"] == {"mgtune.search_spaces": "search_spaces"}
    assert config["package-data"]["mgtune.search_spaces"] == ["*.yaml"]
    assert "published.json" in config["package-data"]["mgtune.report"]


def test_search_spaces_come_from_the_package_unless_the_working_directory_has_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shipped = find_search_space("freedom")
    assert shipped.is_file() and shipped.parent.name == "search_spaces" and tmp_path not in shipped.parents
    own = tmp_path / "search_spaces" / "freedom.yaml"
    own.parent.mkdir()
    own.write_text(shipped.read_text())
    assert find_search_space("FREEDOM") == own
