"""Plot axes a reader can read at any scale, and one marker style per trial status.

Matplotlib's log axis labels minor ticks when the data span less than a decade or so (2×10⁻⁴,
3×10⁻⁴, ... side by side), and its linear axes may put eight long labels on a 3-inch panel; on a
report's small panels both overlap. `log_ticks` chooses at most a few ticks at 1, 2 and 5 times
a power of ten, thinning whole decades when the span is wide.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis

__all__ = ["MOST_TICKS", "STATUS_MARKERS", "log_ticks", "tick_texts", "log_x", "linear_axis"]

MOST_TICKS = 5  # on a report panel (about 3 inches of axis) 5 short labels never touch
STATUS_MARKERS: dict[str, tuple[str, bool]] = {  # status -> (matplotlib marker, filled)
    "completed": ("o", True),
    "early_stopped": ("o", False),
    "budget_stopped": ("s", False),
    "diverged": ("x", True),
    "errored": ("+", True),
}


def log_ticks(low: float, high: float, most: int = MOST_TICKS) -> list[float]:
    """Two to ``most`` ticks in ``[low, high]`` (``0 < low <= high``) for a log axis: 1, 2 and 5 times powers
    of ten; powers of ten alone when those are too many; every n-th one when even those are; round linear
    steps when the span holds fewer than two of them."""
    if not 0 < low <= high < math.inf:
        raise ValueError(f"log_ticks needs 0 < low <= high, got {low}, {high}")

    def inside(value: float) -> bool:
        return low * (1 - 1e-9) <= value <= high * (1 + 1e-9)

    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for subs in ((1, 2, 5), (1,)):
        ticks = [m * 10.0**e for e in decades for m in subs if inside(m * 10.0**e)]
        if 2 <= len(ticks) <= most:
            return ticks
    if len(ticks) > most:
        return ticks[:: -(-len(ticks) // most)]
    # a span too narrow for two of those (say 9.8e-4 to 1.6e-3): round steps inside it, as on a linear axis
    from matplotlib.ticker import MaxNLocator

    if low == high:
        return [low]
    steps = MaxNLocator(nbins=min(3, most - 1), steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
    inner = [float(t) for t in steps if inside(float(t))]  # labels like 1.05e-4 are long: fewer of them
    return inner if len(inner) >= 2 else [low, high]


def tick_texts(values: Sequence[float]) -> list[str]:
    """Short labels for log ticks, in one notation: ``0.01 0.1 1`` or ``1e-4 1e-3 1e-2`` (``2.5e-3``, ``3e5``)."""
    plain = all(v == 0 or -2 <= math.floor(math.log10(abs(v))) <= 2 for v in values)
    return [f"{v:.3g}" if plain else _scientific(v) for v in values]


def _scientific(value: float) -> str:
    mantissa, _, power = f"{value:.2e}".partition("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(power)}"


def log_x(ax: Axes) -> None:
    """A log x axis with `log_ticks` over its current view, labelled with `tick_texts`, minor ticks unlabelled.
    Call it once the data are drawn."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter

    ax.set_xscale("log")
    low, high = sorted(ax.get_xlim())
    ticks = log_ticks(low, high)
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_major_formatter(FixedFormatter(tick_texts(ticks)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def linear_axis(axis: Axis, integer: bool = False) -> None:
    """At most `MOST_TICKS` ticks at round steps (whole numbers only with ``integer``)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=MOST_TICKS - 1, integer=integer, steps=[1, 2, 2.5, 5, 10]))
