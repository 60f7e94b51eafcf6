"""User-facing errors. `cli.main` turns any `MgtuneError` into one line on stderr and exit code 2."""

__all__ = ["MgtuneError", "ConfigError", "DataFormatError", "DivergedError"]


class MgtuneError(Exception):
    """Base class for mistakes in the user's input; other exceptions are bugs and keep a traceback."""


class ConfigError(MgtuneError):
    """A bad setting: unknown key, value out of range, unknown model, malformed search space."""


class DataFormatError(MgtuneError):
    """A dataset folder that is missing or not in MMRec's on-disk format."""


class DivergedError(MgtuneError):
    """The training loss became NaN or infinite; a study records the trial as diverged."""
