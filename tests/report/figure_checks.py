"""What a reader of a plot needs: tick labels that do not overlap and are not cut off (checked as drawn)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def overlapping_tick_labels(fig: Figure) -> list[str]:
    """``"<axes title> x: 'a' / 'b'"`` for each pair of neighbouring tick labels on one axis whose boxes touch,
    and ``"<axes title> x: 'a' cut off"`` for a label reaching past the figure's edge, as drawn (Agg) at the
    report's 90 dpi; labels outside the view are not drawn and not counted."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(90)
    canvas.draw()
    renderer = canvas.get_renderer()
    found = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            low, high = sorted(axis.get_view_interval())
            ticks = [*zip(axis.get_majorticklocs(), axis.get_majorticklabels()),
                     *zip(axis.get_minorticklocs(), axis.get_minorticklabels())]  # a log axis labels minor ticks too
            shown = [(loc, label) for loc, label in ticks if label.get_visible() and label.get_text()
                     and low <= loc <= high]
            boxes = sorted(((label.get_window_extent(renderer), label.get_text()) for _, label in shown),
                           key=lambda b: b[0].x0 if name == "x" else b[0].y0)
            for (a, ta), (b, tb) in itertools.pairwise(boxes):
                if a.overlaps(b):
                    found.append(f"{ax.get_title()} {name}: {ta!r} / {tb!r}")
            page = fig.bbox
            found += [f"{ax.get_title()} {name}: {text!r} cut off" for box, text in boxes
                      if box.x0 < page.x0 or box.x1 > page.x1 or box.y0 < page.y0 or box.y1 > page.y1]
    return found
