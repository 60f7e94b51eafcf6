"""A study's budget: at most so many training epochs (``--budget-epochs``) or so much wall time
(``--time-budget 2h``), summed over all its trials and, across ``--resume``, over all its sessions.

Researchers plan by compute ("4 GPU-hours"), not by trial count. The limits live in ``study.json``
(`StudyRecord.budget_epochs`, `StudyRecord.time_budget_s`); what has been spent lives in
``budget.jsonl`` beside it, rewritten after every epoch by the driver-side tracker
(`mgtune.study._ray_parts.BudgetStopper`), so a resumed study goes on from what it had spent.
Once a limit is reached no new trial starts and running trials stop after their current epoch; the
record names those trials, which ``results.csv`` marks ``budget_stopped``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from mgtune.checks import check_float, check_int
from mgtune.errors import ConfigError, DataFormatError
from mgtune.files import json_text, write_text
from mgtune.store.layout import BUDGET_FILE

__all__ = ["Budget", "Spent", "parse_duration", "format_duration", "read_spent"]

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text: str, what: str = "--time-budget") -> float:
    """Seconds in ``text``: ``90``/``90s``, ``45m``, ``2h``, ``1h30m``, ``1.5d``; `ConfigError` otherwise."""
    raw = str(text).strip().lower()
    try:
        seconds = float(raw)
    except ValueError:
        parts = _DURATION.findall(raw)
        if not parts or "".join(n + u for n, u in parts) != raw.replace(" ", ""):
            raise ConfigError(f"{what} {text!r}: expected a duration such as 90s, 45m, 2h or 1h30m") from None
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    return check_float(what, seconds, low=0, low_open=True)


def format_duration(seconds: float) -> str:
    """``1h02m``, ``4m05s``, ``12s``: short enough for a progress line."""
    s = round(seconds)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


@dataclass(frozen=True)
class Budget:
    """A study's limits; None is no limit of that kind."""

    epochs: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.epochs is not None:
            check_int("--budget-epochs", self.epochs, low=1)
        if self.seconds is not None:
            check_float("--time-budget", self.seconds, low=0, low_open=True)

    def __bool__(self) -> bool:
        return self.epochs is not None or self.seconds is not None

    def ended_by(self, spent: Spent) -> str | None:
        """Which limit ``spent`` has reached ("epochs" or "time"), or None while there is budget left."""
        if self.epochs is not None and spent.epochs >= self.epochs:
            return "epochs"
        if self.seconds is not None and spent.seconds >= self.seconds:
            return "time"
        return None

    def describe(self, spent: Spent) -> str:
        """``budget 120/400 epochs``, ``budget 12m00s/2h00m``, or both: what a progress line shows."""
        parts = []
        if self.epochs is not None:
            parts.append(f"{spent.epochs}/{self.epochs} epochs")
        if self.seconds is not None:
            parts.append(f"{format_duration(spent.seconds)}/{format_duration(self.seconds)}")
        return "budget " + ", ".join(parts) if parts else ""


@dataclass(frozen=True)
class Spent:
    """What a study has spent so far: epochs trained (every trial's, retries included) and wall seconds;
    and the trials the budget cut short (Ray trial ids), so that ``results.csv`` can tell them from
    trials ASHA stopped (``budget_stopped``, not ``early_stopped``)."""

    epochs: int = 0
    seconds: float = 0.0
    stopped: tuple[str, ...] = ()

    def write(self, folder: Path) -> None:
        write_text(Path(folder) / BUDGET_FILE, json_text(asdict(self)) + "\n")


def read_spent(folder: Path) -> Spent:
    """The spending recorded in ``folder/budget.jsonl``; nothing spent if the file is absent.

    A record written before budgets named the trials they stopped has no ``stopped``: none are known.
    """
    path = Path(folder) / BUDGET_FILE
    if not path.is_file():
        return Spent()
    try:
        info = json.loads(path.read_text())
        epochs, seconds, stopped = info["epochs"], info["seconds"], info.get("stopped", [])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError, KeyError) as exc:
        raise DataFormatError(f"{path}: not a budget record ({type(exc).__name__}: {exc})") from None
    if not isinstance(stopped, list) or not all(isinstance(t, str) for t in stopped):
        raise DataFormatError(f"{path}: 'stopped' must be a list of trial ids, got {stopped!r}")
    try:
        return Spent(check_int("epochs", epochs, low=0), check_float("seconds", seconds, low=0), tuple(stopped))
    except ConfigError as exc:
        raise DataFormatError(f"{path}: {exc}") from None
