"""Writing a file or a folder so that no reader, no crash and no full disk ever leaves half of it.

Every output of mgtune (datasets, caches, checkpoints, study files, results) is written to a temp
file beside its target and renamed over it only once complete: the old file stays whole until then,
and an error removes the temp file. Temp names are unique, so concurrent writers (Ray trials
sharing a cache) never write into one another's file. A disk that refuses the write (full, over
quota, read-only, a file too large for it) is a `StorageError` naming the target: one line, not a
traceback, and the old file or folder kept.

Whole folders (a dataset) are built in a temp folder beside the target (`replace_dir`) named
``.NAME.mgtune-HOST-PID-START-RANDOM.tmp``: the process that builds it is in its name, so a run
killed with ``kill -9`` (which no cleanup survives) leaves a folder that the next `replace_dir` in
the same parent removes, once that process is gone; one of another machine, or of an older mgtune,
only when it is a week old. A folder a running process builds is never touched.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from mgtune.checks import finite_or_none
from mgtune.errors import ConfigError, StorageError

__all__ = ["atomic_open", "write_text", "write_json", "json_text", "replace_dir", "check_replaceable",
           "remove_stale_temps", "sigterm_as_interrupt", "storage_errors", "disk_refusal",
           "refusal_text", "refused_by_the_disk", "check_room", "free_bytes", "min_free_bytes", "stops_on_a_full_disk",
           "claim_folder", "LOCK_FILE", "STALE_AFTER_S", "ROOM_PROBE_BYTES", "MIN_FREE_ENV", "MIN_FREE_MB"]

_UMASK = os.umask(0o022)  # read the process umask (the only way is to set it) and put it back
os.umask(_UMASK)

_REFUSALS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is reached",
             errno.EROFS: "the file system is read-only", errno.EFBIG: "the file is too large for the file system"}
_DENIED = (errno.EACCES, errno.EPERM)
STALE_AFTER_S = 7 * 24 * 3600
"""A temp folder whose process cannot be checked (another machine's, an older mgtune's) is stale after a week."""
_TEMP = re.compile(r"^\.(?P<name>.+)\.mgtune-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-(?P<start>\d+)-[0-9a-f]{8}"
                   r"\.(?P<kind>tmp|old)$")
_OLDER_TEMP = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{32}\.(?P<kind>tmp|old)$")  # mgtune's names before the PID


@contextmanager
def storage_errors(target: Path, kept: str = "nothing was replaced", create: bool = False) -> Iterator[None]:
    """Within: the disk's refusals (`_REFUSALS`; with ``create`` also permission denied) while writing ``target``
    become a `StorageError` naming it; ``kept`` says what is left as it was."""
    try:
        yield
    except Exception as exc:
        found = disk_refusal(exc)
        denied = create and isinstance(exc, OSError) and exc.errno in _DENIED
        if found is None and not denied:
            raise
        cause = found if found is not None else exc
        assert isinstance(cause, OSError) and cause.errno is not None
        why = f"permission denied ({errno.errorcode[cause.errno]})" if found is None else refusal_text(cause)
        where = f", writing {cause.filename}" if cause.filename and str(cause.filename) != str(target) else ""
        raise StorageError(f"{target}: cannot write: {why}{where}; {kept}") from None


def refusal_text(exc: OSError) -> str:
    """"the disk is full (ENOSPC)": the disk's refusal ``exc`` (one of `_REFUSALS`) in words."""
    return f"{_REFUSALS.get(exc.errno or 0, exc.strerror)} ({errno.errorcode.get(exc.errno or 0, exc.errno)})"


def disk_refusal(exc: BaseException) -> OSError | None:
    """The disk's refusal (`_REFUSALS`) behind ``exc``, or None.

    Looked for along the exception's chain too: libraries rewrap it (``torch.save`` raises a
    ``RuntimeError`` "unexpected pos" while handling the ``OSError`` ENOSPC of its zip writer).
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, OSError) and cur.errno in _REFUSALS:
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def refused_by_the_disk(error: BaseException) -> bool:
    """Whether an error a trial raised (as Ray hands it back: rewrapped, or only its text kept) was the
    disk's refusal, a `StorageError` or one of `_REFUSALS`."""
    if isinstance(error, StorageError) or disk_refusal(error) is not None:
        return True
    text = str(error)
    return f"{StorageError.__name__}: " in text or any(f"[Errno {code}]" in text for code in _REFUSALS)


ROOM_PROBE_BYTES = 64 * 1024
"""What `check_room` writes: more than any state file Ray or mgtune writes between two checks."""
MIN_FREE_ENV = "MGTUNE_MIN_FREE_MB"
MIN_FREE_MB = 256.0
"""What a study or a confirmation keeps free on its storage by default: Ray rewrites its experiment state in
place, so the run is stopped (as by Ctrl-C) while that still fits, rather than by a full disk mid-write."""


def min_free_bytes() -> int:
    """The free space a run keeps on its storage: ``$MGTUNE_MIN_FREE_MB`` megabytes, else `MIN_FREE_MB`."""
    raw = os.environ.get(MIN_FREE_ENV, "").strip()
    try:
        mb = float(raw) if raw else MIN_FREE_MB
    except ValueError:
        mb = float("nan")
    if not mb >= 0 or mb == float("inf"):
        raise ConfigError(f"{MIN_FREE_ENV}={raw!r}: expected a number of megabytes >= 0")
    return int(mb * 2**20)


def free_bytes(folder: Path) -> int:
    """Free space for this user on the disk holding ``folder`` (or its nearest existing parent)."""
    st = os.statvfs(_existing(folder))
    return st.f_bavail * st.f_frsize


def _existing(folder: Path) -> Path:
    """``folder``, or its nearest parent that exists: where a folder about to be made will be."""
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    return folder


def check_room(folder: Path, then: str, keep_free: bool = True) -> None:
    """A `StorageError` when the disk holding ``folder`` refuses a write of `ROOM_PROBE_BYTES` now, or (with
    ``keep_free``) has less free than `min_free_bytes`.

    A probe, not only ``statvfs``: it sees a quota (EDQUOT) and a read-only mount as well as a full disk.
    ``then`` says what the user can do about it ("the study stopped: ... continue it with ...").
    """
    where = _existing(folder)
    try:
        with tempfile.TemporaryFile(dir=where) as fh:
            fh.write(b"\0" * ROOM_PROBE_BYTES)
            fh.flush()
    except OSError as exc:
        if exc.errno not in _REFUSALS:
            raise
        raise StorageError(f"{folder}: cannot write: {refusal_text(exc)}; {then}") from None
    need = min_free_bytes() if keep_free else 0
    if (free := free_bytes(where)) < need:
        raise StorageError(f"{folder}: the disk is nearly full: {free / 2**20:.1f} MB free, below the "
                           f"{need / 2**20:g} MB a run keeps free ({MIN_FREE_ENV}); {then}")


@contextmanager
def stops_on_a_full_disk(folder: Path, then: str) -> Iterator[None]:
    """Within: a long run whose library writes its own files under ``folder`` (Ray Tune's trial and
    experiment state). A full disk surfaces there as whatever exception the library raises next
    (``EOFError`` reading a cut-short file back), so the disk is asked directly when such an error
    ends the block: a refusal is a `StorageError` (``then`` says what to do), never a traceback."""
    try:
        yield
    except Exception:
        check_room(folder, then, keep_free=False)
        raise


@contextmanager
def atomic_open(path: Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temp file beside ``path`` for writing; on a clean exit it replaces ``path``.

    The file gets the permissions a plain ``open`` would give it (``mkstemp`` makes them 0600).
    """
    kept = "the old file is kept" if path.exists() else "nothing was written"
    with storage_errors(path, kept, create=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with storage_errors(path, kept):
            with os.fdopen(fd, mode, **kwargs) as fh:
                yield fh
            os.chmod(tmp, 0o666 & ~_UMASK)
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8), atomically."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def json_text(obj: Any, indent: int | None = None) -> str:
    """``obj`` as standard JSON: non-finite numbers become null (never the non-JSON ``NaN``)."""
    return json.dumps(finite_or_none(obj), indent=indent, allow_nan=False)


def write_json(path: Path, obj: Any) -> None:
    """Replace ``path`` with ``obj`` as indented JSON, atomically."""
    write_text(path, json_text(obj, indent=2) + "\n")


def check_replaceable(folder: Path, replace: bool) -> Path:
    """``folder`` if `replace_dir` may put a new folder there: it is absent, or a folder and ``replace``.

    A symbolic link is refused, whether or not ``replace``: replacing the link would move the data
    somewhere the user did not choose, and replacing what it points to would delete a folder outside
    the parent, perhaps holding more than this one dataset. A file is refused too.
    """
    if folder.is_symlink():
        raise ConfigError(f"{folder}: is a symbolic link (to {os.readlink(folder)}); mgtune replaces neither a link "
                          "nor the folder it points to: remove the link, or write into that folder's own parent")
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: exists and is not a folder")
    if folder.exists() and not replace:
        raise ConfigError(f"{folder}: already exists; pass --force to replace it")
    return folder


def replace_dir(folder: Path, build: Callable[[Path], object], replace: bool = False) -> None:
    """Run ``build`` on a temp folder beside ``folder``, then put it in ``folder``'s place.

    A whole dataset folder is swapped, so nothing of an old one (a stale graph file, a cache) survives
    into the new one. The new folder is renamed into place, which never clobbers an existing one: with
    ``replace`` the old folder is renamed aside first and removed after the swap (so for an instant
    ``folder`` is absent, but never half-written); without it, a folder that appeared while ``build``
    ran (a concurrent run's) is kept and this one is refused. A failure, an interrupt or a full disk
    removes the temp folder and leaves the old folder as it was; stale temp folders of killed runs in
    the same parent are removed first (`remove_stale_temps`). Links and files are refused
    (`check_replaceable`).
    """
    check_replaceable(folder, replace)
    kept = "the old folder is kept" if folder.exists() else "nothing was written"
    with storage_errors(folder, kept, create=True):
        folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(folder.parent)
    tmp = folder.parent / f".{folder.name}.{_token()}.tmp"
    old = tmp.with_suffix(".old")
    with storage_errors(folder, kept, create=True):
        tmp.mkdir()  # the permissions a plain mkdir gives (mkdtemp's would be 0700)
    try:
        with storage_errors(folder, f"{kept}, the temp folder removed"):
            build(tmp)
            _swap(tmp, folder, old, replace)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists():
            if folder.exists() or folder.is_symlink():  # another run replaced it meanwhile, as this one meant to
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _swap(tmp: Path, folder: Path, old: Path, replace: bool) -> None:
    """Rename ``tmp`` to ``folder``; an existing ``folder`` is renamed to ``old`` first if ``replace``."""
    if _rename_new(tmp, folder):
        return
    if not replace:
        raise ConfigError(f"{folder}: appeared while this one was being built (another run?); it is kept; pass "
                          "--force to replace it")
    check_replaceable(folder, replace)  # it may have become a link meanwhile
    with suppress(FileNotFoundError):  # removed meanwhile
        os.rename(folder, old)
    if not _rename_new(tmp, folder):
        raise ConfigError(f"{folder}: another run replaced it at the same moment; its folder is kept")


def _rename_new(tmp: Path, folder: Path) -> bool:
    """Rename ``tmp`` to ``folder`` unless ``folder`` exists and is not empty (rename(2) never clobbers that)."""
    try:
        os.rename(tmp, folder)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            return False
        raise
    return True


# ---------------------------------------------------------------- temp folders of killed runs
def _host_id() -> str:
    """This machine and PID namespace (containers sharing a disk and a host name have their own PIDs)."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return hashlib.blake2b(f"{socket.gethostname()}|{namespace}".encode(), digest_size=4).hexdigest()


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), so a reused PID is told apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rpartition(b")")[2].split()[19].decode()
    except (OSError, IndexError):
        return None


def _token() -> str:
    return f"mgtune-{_host_id()}-{os.getpid()}-{_start_time(os.getpid()) or 0}-{uuid.uuid4().hex[:8]}"


def _running(host: str, pid: int, start: str) -> bool | None:
    """Whether the process that named a temp folder still runs; None when this machine cannot tell."""
    if host != _host_id():
        return None
    if os.path.isdir("/proc/self"):
        return _start_time(pid) == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return True


def remove_stale_temps(parent: Path) -> list[str]:
    """Remove the temp folders `replace_dir` left in ``parent`` when its process was killed; their names.

    Only mgtune's own names count, and only when their process is gone (this machine) or they are
    older than `STALE_AFTER_S` (another machine, an older mgtune). A folder set aside by a swap that
    was cut short (``.old``) whose folder is missing is renamed back instead: it is the only copy.
    """
    removed: list[str] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP.match(entry.name) or _OLDER_TEMP.match(entry.name)
        if match is None or not entry.is_dir(follow_symlinks=False):
            continue
        fields = match.groupdict()
        running = _running(fields["host"], int(fields["pid"]), fields["start"]) if "pid" in fields else None
        try:
            old_enough = time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S
        except OSError:
            continue
        if running or (running is None and not old_enough):
            continue
        folder = parent / fields["name"]
        if fields["kind"] == "old" and not (folder.exists() or folder.is_symlink()):
            try:
                os.rename(entry.path, folder)
                continue
            except OSError:
                pass
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.name)
    return removed


@contextmanager
def sigterm_as_interrupt(first: Callable[[], None] | None = None) -> Iterator[None]:
    """Within: SIGTERM (``kill``, a scheduler ending a job) raises KeyboardInterrupt, as Ctrl-C does,
    after calling ``first`` (the CLI's `mgtune.processes.on_sigterm`).

    Python's default for SIGTERM ends the process at once, so `replace_dir` could not remove its
    temp folder; as an interrupt it does, and the command ends as an interrupted one (exit 130).
    Only the main thread can set a handler; elsewhere nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        if first is not None:
            first()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


LOCK_FILE = ".mgtune.lock"
"""Held (``flock``) by the run that writes a study or suite folder, for as long as it runs."""


@contextmanager
def claim_folder(folder: Path, fresh: str | None = None, what: str = "run") -> Iterator[None]:
    """Within: ``folder`` (created if missing) is this process's alone; a second run on it is a `ConfigError`.

    Checking that a folder is free and then creating it lets two runs started at once both through;
    an exclusive ``flock`` on `LOCK_FILE` cannot: the kernel gives it to one of them, and drops it when
    its process ends, however (``kill -9`` included), so a stale lock never blocks a resume. With
    ``fresh`` (a new run), that file must not exist once the lock is held: a run that ended in between
    wrote it. A folder this claim created and that holds nothing but the lock when it ends (the run was
    refused before writing anything) is removed, so the claim can come before any other check.
    """
    created = not folder.exists()
    with storage_errors(folder, create=True):
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            raise ConfigError(f"{folder}: in use by another mgtune {what} ({holder}); wait for it to end or "
                              "pick another --name") from None
        if fresh is not None and (folder / fresh).exists():
            raise ConfigError(f"{folder}: a {what} of this name exists; continue it with --resume or pick "
                              "another --name")
        held = True
        with suppress(OSError):  # who holds it, for the message above; the lock itself is what counts
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        yield
    finally:
        if held and created:
            with suppress(OSError):
                if [p.name for p in folder.iterdir()] == [LOCK_FILE]:
                    (folder / LOCK_FILE).unlink()
                    folder.rmdir()
        os.close(fd)  # releases the lock


def _holder(fd: int) -> str:
    """Who holds the lock on ``fd``, as it wrote there ("pid N on HOST"); the holder writes it just after
    taking the lock, so a run refused at that instant waits a moment for it."""
    for _ in range(20):
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        if text:
            return text
        time.sleep(0.05)
    return "another process"
