"""The processes mgtune starts: their priority, their number, and that none outlives its starter.

Priority. Ray lowers its workers' priority by ``worker_niceness`` (default 15) below the raylet, which runs
at the niceness of the command that started it. On a machine that also runs other work the trials then
get the CPU only when nothing else wants it, so mgtune asks for an increment of 0 (the command's own
niceness), or for a lower priority on purpose. Ray also starts, when a driver connects, one idle
worker per CPU it books: a runtime booked for the trials a study runs at a time starts no more.

Orphans. A suite runs each study as its own ``mgtune run`` process, in its own session (so that one
Ctrl-C reaches the suite, which passes it on once). A ``kill -9`` of the suite gives it no chance to
stop them, and they would run on for minutes against a Ray runtime that died with it. On Linux the
kernel can send a child a signal when its parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere
nothing changes. The signal is SIGTERM, which a study takes as Ctrl-C; but when the suite started the
Ray runtime, that runtime dies with it, and a study stopping as Ctrl-C does would wait a minute for
it (Ray's reconnect timeout) to save nothing, and its main thread may sit that minute in a Ray call
that no signal handler interrupts. So a suite tells its studies (`SUITE_ENV`) whose death ends their
runtime and how to continue the suite, and a thread of each study (`watch_suite`) ends it at once
when that happens. The kernel sends the parent-death signal when the suite's *thread* that started
the study ends, which in a killed suite may come a few milliseconds before the suite itself is gone:
so every SIGTERM handler of a study first gives the suite a moment to be gone (`on_sigterm`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import json
import math
import os
import signal
import sys
import threading
import time

from mgtune.checks import check_int
from mgtune.errors import ConfigError

__all__ = ["TRIAL_NICENESS_ENV", "MAX_NICENESS", "SUITE_ENV", "trial_niceness", "local_cpus", "die_with_parent",
           "suite_env", "orphaned", "exit_if_orphaned", "on_sigterm", "watch_suite"]

TRIAL_NICENESS_ENV = "MGTUNE_TRIAL_NICENESS"
"""The niceness of a local runtime's trial workers when ``--trial-niceness`` is not given."""
MAX_NICENESS = 19


def trial_niceness(given: int | None = None) -> int:
    """The niceness trial workers run at: ``given``, else ``$MGTUNE_TRIAL_NICENESS``, else this process's own.

    Never below this process's own: a trial may yield the CPU on purpose, not take it from the command
    that started it."""
    own = os.nice(0)
    name = "--trial-niceness"
    if given is None:
        text = os.environ.get(TRIAL_NICENESS_ENV, "").strip()
        if not text:
            return own
        name = f"${TRIAL_NICENESS_ENV}"
        try:
            given = int(text)
        except ValueError:
            raise ConfigError(f"{name}: expected a whole number from {own} to {MAX_NICENESS}, got {text!r}") from None
    value = check_int(name, given, high=MAX_NICENESS)
    if value < own:
        raise ConfigError(f"{name} {value}: below this command's own niceness ({own}); a trial can run at a lower "
                          f"priority than the command, not a higher one (give {own} to {MAX_NICENESS})")
    return value


def local_cpus(cpus_per_trial: float, trials_at_once: int, detected: int) -> int:
    """CPUs to book for a local runtime: enough for ``trials_at_once`` trials, never more than ``detected``
    (what Ray would book by itself: a too-large ``--cpus-per-trial`` is still refused with that count)."""
    need = math.ceil(cpus_per_trial * max(1, trials_at_once) - 1e-9)
    return max(1, min(detected, need))


_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """Ask the kernel for SIGTERM (which a study treats as Ctrl-C: it saves its state) when the parent dies.

    Meant as a ``preexec_fn``: it runs in the child between fork and exec, and the setting survives
    the exec. ``parent`` is the starter's pid: if it died before the setting took, exit at once.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if parent is not None and os.getppid() != parent:
        os._exit(1)


SUITE_ENV = "MGTUNE_SUITE"
"""Set by a suite that started its own Ray runtime for the studies it runs: its pid and its resume command."""


def suite_env(resume: str) -> dict[str, str]:
    """The environment a suite that owns its Ray runtime gives each study it starts."""
    return {SUITE_ENV: json.dumps({"pid": os.getpid(), "resume": resume})}


@functools.cache
def _suite() -> tuple[int, str] | None:
    """The pid and resume command of the suite that started this process (`SUITE_ENV`); None if none did."""
    try:
        suite = json.loads(os.environ[SUITE_ENV])
        return int(suite["pid"]), str(suite["resume"])
    except (KeyError, ValueError, TypeError):
        return None


def orphaned() -> str | None:
    """Why this study cannot save anything more, when the suite that started it (and owned its Ray runtime)
    has died: the one line to show; None otherwise (not a suite's study, or the suite is alive)."""
    suite = _suite()
    if suite is None or os.getppid() == suite[0]:
        return None
    pid, resume = suite
    return (f"the suite that started this study (pid {pid}) died, and its Ray runtime with it; the study's "
            f"state is as Ray last saved it: continue the suite with: {resume}")


def exit_if_orphaned(wait: float = 0.0) -> None:
    """End this process (exit 130, the line on stderr) if its suite has died (`orphaned`), or dies within
    ``wait`` seconds."""
    if _suite() is None:
        return
    deadline = time.monotonic() + wait
    while (why := orphaned()) is None:
        if time.monotonic() >= deadline:
            return
        time.sleep(0.02)
    print(f"mgtune: error: {why}", file=sys.stderr, flush=True)
    os._exit(130)


SUITE_DEATH_SECONDS = 1.0
"""How long a suite's study given SIGTERM waits for the suite to be gone before taking it as Ctrl-C."""


def on_sigterm() -> None:
    """The first step of every SIGTERM handler: in a suite's study a SIGTERM is, but for a rare ``kill``
    from outside, the suite's death (the suite passes Ctrl-C on as SIGINT); end as `exit_if_orphaned` does
    once it is gone, waiting `SUITE_DEATH_SECONDS` for the rest of a killed suite to follow its thread."""
    exit_if_orphaned(wait=SUITE_DEATH_SECONDS)


def watch_suite(poll_seconds: float = 0.5) -> None:
    """In a suite's study: a daemon thread that calls `exit_if_orphaned` every ``poll_seconds``."""
    if _suite() is None:
        return

    def watch() -> None:
        while True:
            exit_if_orphaned()
            time.sleep(poll_seconds)

    threading.Thread(target=watch, name="mgtune-suite-watch", daemon=True).start()
