"""Where a run's folder goes, and whether an existing one may be resumed.

`run_folder` is the one rule for a study's or a suite's folder: ``<storage>/<name>`` with ``name``
one folder name, ``storage`` a folder this user can write, checked before anything starts.
`check_trusted` guards ``--resume``, which lets Ray unpickle files from the folder, and `check_ray_state`
refuses Ray's saved state when a full disk or a crash cut it short. `study_folders` reads a folder given
as "a study, or a folder of studies".
"""

from __future__ import annotations

import json
import os
import pickletools
import stat
from pathlib import Path

from mgtune.errors import ConfigError
from mgtune.store.layout import STUDY_FILE

__all__ = ["run_folder", "check_trusted", "check_ray_state", "whole_pickle", "study_folders"]

# Ray Tune's own files in an experiment folder: it restores from the newest (greatest) name of each pattern
_RAY_STATE = (("experiment_state-*.json", "json"), ("tuner.pkl", "pickle"), ("searcher-state-*.pkl", "pickle"))


def run_folder(storage: str, name: str, what: str = "study") -> Path:
    """``<storage>/<name>``, absolute; `ConfigError` unless ``name`` is one path component and ``storage``
    is (or can become) a folder this user can write. Checked before Ray starts. ``what``: "study" or
    "suite", for the message."""
    if "://" in storage:
        raise ConfigError(
            f"--storage {storage}: URIs are not supported; pass a folder every node can read and write "
            "(an NFS mount, or a bucket mounted with gcsfuse / mountpoint-s3)"
        )
    seps = {os.sep, os.altsep or os.sep}
    if name in ("", ".", "..") or any(c in name for c in seps) or "\0" in name:
        raise ConfigError(f"--name {name!r}: a {what} name is one folder name under --storage "
                          "(not empty, no '/', not '.' or '..')")
    root = Path(storage).expanduser()
    if "\0" in storage:
        raise ConfigError(f"--storage {storage!r}: not a valid path")
    existing = root
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        problem = "is not a folder" if existing == root else f"cannot be created: {existing} is not a folder"
        raise ConfigError(f"--storage {storage}: {problem}")
    if not os.access(existing, os.W_OK | os.X_OK):
        problem = "is not writable" if existing == root else f"cannot be created: {existing} is not writable"
        raise ConfigError(f"--storage {storage}: {problem} by this user")
    return (root.resolve() / name)


def check_trusted(folder: Path) -> None:
    """`ConfigError` unless ``folder`` and everything in it is this user's and writable by no one else.

    Resuming unpickles Ray's state (``tuner.pkl``, ``experiment_state-*.json``, ``searcher-state-*.pkl``,
    trials' ``error.pkl``), which runs code. The trust boundary is other users: a file this user owns
    and only this user can write is trusted; anything another user could have written is refused.
    Group write is allowed only for the user's private group (what a umask of 002 gives).
    """
    uid = os.getuid()
    paths = [folder]
    for top, dirs, files in os.walk(folder, onerror=_raise):
        paths += [Path(top, n) for n in dirs + files]
    for path in paths:
        try:
            st = path.lstat()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot be checked before resuming ({exc.strerror})") from None
        if stat.S_ISLNK(st.st_mode):
            raise ConfigError(f"{path}: refusing to resume: a symbolic link in the study folder")
        if st.st_uid != uid:
            raise ConfigError(f"{path}: refusing to resume: owned by uid {st.st_uid}, not by this user "
                              f"(uid {uid}); Ray would unpickle files from this folder")
        others = stat.S_IWOTH | (0 if _private_group(st.st_gid, uid) else stat.S_IWGRP)
        if st.st_mode & others:
            raise ConfigError(f"{path}: refusing to resume: writable by group or others "
                              f"(mode {stat.filemode(st.st_mode)}); Ray would unpickle files from this folder "
                              f"(if you trust it: chmod -R go-w {folder})")


def check_ray_state(folder: Path, then: str) -> None:
    """`ConfigError` when Ray's saved state in ``folder`` is damaged (cut short, or not what Ray writes).

    Checked before Ray starts, and without unpickling anything (`whole_pickle`). Ray itself, given a
    damaged ``experiment_state-*.json``, starts over as if no trial had run, so a resumed study would
    rewrite its results without them. ``then`` says what the user can do instead.
    """
    for pattern, kind in _RAY_STATE:
        found = sorted(folder.glob(pattern))
        if not found:
            continue
        newest = found[-1]
        try:
            data = newest.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{newest}: Ray's saved state cannot be read ({exc.strerror}); {then}") from None
        if kind == "pickle":
            whole = whole_pickle(data)
        else:
            try:
                doc = json.loads(data)
            except ValueError:  # JSON's errors, and bytes that are not UTF-8
                doc = None
            whole = isinstance(doc, dict) and isinstance(doc.get("trial_data"), list)
        if not whole:
            raise ConfigError(f"{newest}: Ray's saved state is damaged (cut short, or not what Ray writes); {then}")


def whole_pickle(data: bytes) -> bool:
    """Whether ``data`` is one complete pickle, read opcode by opcode (nothing is unpickled or run)."""
    last = None
    try:
        for op, _, _ in pickletools.genops(data):
            last = op.name
    except Exception:  # genops' errors on a cut-short or foreign stream (ValueError, struct errors, ...)
        return False
    return last == "STOP"


def _private_group(gid: int, uid: int) -> bool:
    """Whether group ``gid`` is this user's own (a user private group, as a umask of 002 expects):
    named after the user, no other member, and no other user's primary group."""
    import grp
    import pwd

    try:
        group, user = grp.getgrgid(gid), pwd.getpwuid(uid)
    except KeyError:
        return False
    if group.gr_name != user.pw_name or set(group.gr_mem) - {user.pw_name}:
        return False
    return all(p.pw_gid != gid or p.pw_uid == uid for p in pwd.getpwall())


def _raise(exc: OSError) -> None:
    raise ConfigError(f"{exc.filename}: cannot be checked before resuming ({exc.strerror})")


def study_folders(path: str | Path) -> list[Path]:
    """``path`` (resolved) if it is a study folder; else its subfolders that are studies (a suite, say), sorted;
    else `ConfigError`."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"{path}: no such study folder")
    if (folder / STUDY_FILE).is_file():
        return [folder.resolve()]
    subs = sorted(p.resolve() for p in folder.iterdir() if p.is_dir() and (p / STUDY_FILE).is_file())
    if not subs:
        raise ConfigError(f"{path}: not a study folder (no {STUDY_FILE}) nor a folder of study folders")
    return subs
