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


# ---------------------------------------------------------------- folders, full disks, killed runs (issue 23)
def test_replace_dir_refuses_links_and_files_and_never_clobbers_without_replace(tmp_path: Path) -> None:
    from mgtune.errors import ConfigError
    from mgtune.files import replace_dir

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "keep.txt").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "file").write_text("y")
    for name, replace, message in (("link", True, "is a symbolic link"), ("file", True, "exists and is not a folder"),
                                   ("real", False, "already exists; pass --force")):
        with pytest.raises(ConfigError, match=message):
            replace_dir(tmp_path / name, lambda tmp: (tmp / "new.txt").write_text("new"), replace=replace)
    assert sorted(os.listdir(tmp_path)) == ["file", "link", "real"]
    assert os.listdir(tmp_path / "real") == ["keep.txt"]
    replace_dir(tmp_path / "real", lambda tmp: (tmp / "new.txt").write_text("new"), replace=True)
    assert os.listdir(tmp_path / "real") == ["new.txt"] and sorted(os.listdir(tmp_path)) == ["file", "link", "real"]


def test_stale_temp_folders_go_by_their_process_or_their_age(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    from mgtune.files import STALE_AFTER_S, remove_stale_temps, replace_dir

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    old = time.time() - STALE_AFTER_S - 60

    def folder(name: str, age: float | None = None) -> str:
        (tmp_path / name).mkdir()
        (tmp_path / name / "x").write_text("x")
        if age is not None:
            os.utime(tmp_path / name, (age, age))
        return name

    mine: list[str] = []
    replace_dir(tmp_path / "g", lambda tmp: mine.append(tmp.name))  # its own temp name, of a live process
    names: dict[str, bool] = {  # name: whether it is removed
        folder(".a.mgtune-00000000-1-1-0123abcd.tmp"): False,  # another machine's, recent
        folder(".b.mgtune-00000000-1-1-0123abcd.tmp", old): True,  # another machine's, a week old
        folder(".c." + "0" * 32 + ".tmp"): False,  # an older mgtune's, recent
        folder(".d." + "0" * 32 + ".old", old): True,  # set aside by a swap cut short, and d is missing: d again
        folder(".e.tmp", old): False,  # not mgtune's name
        folder("f"): False,
    }
    token = mine[0].removeprefix(".g.").removesuffix(".tmp")
    host, own_pid = token.split("-")[1], token.split("-")[2]
    dead_name = folder(f".h.mgtune-{host}-{pid}-1-0123abcd.tmp")  # this machine, process gone
    live_name = folder(f".i.mgtune-{host}-{own_pid}-{token.split('-')[3]}-0123abcd.tmp")  # this very process
    removed = [*(n for n, gone in names.items() if gone and not n.endswith(".old")), dead_name]
    assert sorted(remove_stale_temps(tmp_path)) == sorted(removed)
    assert sorted(os.listdir(tmp_path)) == sorted([*(n for n, gone in names.items() if not gone), "d", "g", live_name])
    assert os.listdir(tmp_path / "d") == ["x"]


def test_a_full_disk_is_a_storage_error_and_keeps_the_old_file(tmp_path: Path) -> None:
    import subprocess

    from mgtune.errors import StorageError

    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        write_text(disk / "f.txt", "old\n")
        with pytest.raises(StorageError, match=r"f\.txt: cannot write: the disk is full \(ENOSPC\); the old file is "
                                               "kept"):
            write_text(disk / "f.txt", "x" * 200_000)
        assert os.listdir(disk) == ["f.txt"] and (disk / "f.txt").read_text() == "old\n"
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_sigterm_is_an_interrupt_inside_and_the_default_after(tmp_path: Path) -> None:
    import signal

    from mgtune.files import sigterm_as_interrupt

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt), sigterm_as_interrupt():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause()  # not reached: the handler raises as soon as the signal arrives
    assert signal.getsignal(signal.SIGTERM) == before
