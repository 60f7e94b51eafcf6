"""Values every record shares: the time stamps records carry and numbers read back from text."""

from __future__ import annotations

import math
import time
from typing import Any

__all__ = ["now", "finite_number"]


def now() -> str:
    """The local time as records hold it (``created``, ``finished``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def finite_number(value: Any) -> float | None:
    """``value`` as a finite float (numbers, or text from a CSV cell); None for anything else."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
