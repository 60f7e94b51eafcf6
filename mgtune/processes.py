"""Child processes that do not outlive the process that started them.

A suite runs each study as its own ``mgtune run`` process, in its own session (so that one Ctrl-C
reaches the suite, which passes it on once). A ``kill -9`` of the suite gives it no chance to stop
them, and they would run on for minutes against a Ray runtime that died with it. On Linux the
kernel can send a child a signal when its parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere
nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

__all__ = ["die_with_parent"]

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
