"""Atomic writes: the target is replaced whole or not at all, no temp file is left, permissions as open()'s."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mgtune.files import atomic_open, write_json, write_text


def test_write_replaces_and_leaves_nothing_beside(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"
    write_json(target, {"a": 1})
    write_json(target, {"a": 2})
    assert target.read_text() == '{\n  "a": 2\n}\n'
    assert os.listdir(target.parent) == ["out.json"]
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_an_error_keeps_the_old_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "results.csv"
    write_text(target, "old\n")
    with pytest.raises(RuntimeError), atomic_open(target, "w") as fh:
        fh.write("half of the new")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["results.csv"]
