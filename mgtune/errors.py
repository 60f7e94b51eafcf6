"""User-facing errors. `cli.main` turns any `MgtuneError` into one line on stderr and exit code 2.

Errors that cross Ray's pickling: an exception raised inside a trial (on a Ray worker) reaches the
driver wrapped by Ray (``RayTaskError(DivergedError)``, say), and after a study is resumed only its
text survives, in the trial's ``error.txt`` and its own ``failed.txt`` (`mgtune.store.layout`). So
whatever must be recognised on the driver is recognised by its class *name* in that text as well as
by ``isinstance``: `DivergedError` (a trial's status ``diverged``, `mgtune.store.results`), the
trainable's ``TrialOutOfMemoryError`` (its message is the one-line reason) and the session's
``_TrialFailed`` (an error the trial raised before, raised again so that it is not retried). Every
class here takes a single message argument, so that Ray can pickle and rebuild it.
"""

__all__ = ["MgtuneError", "ConfigError", "DataFormatError", "DivergedError", "StorageError"]


class MgtuneError(Exception):
    """Base class for mistakes in the user's input; other exceptions are bugs and keep a traceback."""


class ConfigError(MgtuneError):
    """A bad setting: unknown key, value out of range, unknown model, malformed search space."""


class DataFormatError(MgtuneError):
    """A dataset folder that is missing or not in MMRec's on-disk format."""


class DivergedError(MgtuneError):
    """The training loss became NaN or infinite; a study records the trial as diverged."""


class StorageError(MgtuneError):
    """The disk refused a write: it is full, over quota, read-only, or the file is too large for it.

    Not a bug and not the input's fault, so one line, exit code 2 (`mgtune.files` raises it); what was
    there before the write is kept whole and the write's temp files are removed.
    """
