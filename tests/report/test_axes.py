"""Readable axes: few round log ticks at any span, short labels that never overlap, one marker per status."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from figure_checks import overlapping_tick_labels

from mgtune.report.axes import MOST_TICKS, STATUS_MARKERS, linear_axis, log_ticks, log_x, tick_texts
from mgtune.store import STATUSES

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@pytest.mark.parametrize(("low", "high"), [
    (1e-4, 1e-2), (1.1e-4, 9.9e-3), (1.1e-4, 0.99), (3e-4, 4e-4), (1e-9, 1e3), (1.5, 180.0), (2.3e-4, 7.7e-4),
    (9e-5, 1.1e-4), (1e-12, 1e12), (9.77e-4, 1.64e-3), (9.7e-4, 9.8e-4),
])
def test_log_ticks_are_few_and_inside(low: float, high: float) -> None:
    ticks = log_ticks(low, high)
    assert 2 <= len(ticks) <= MOST_TICKS
    assert ticks == sorted(set(ticks))
    assert all(low * (1 - 1e-9) <= t <= high * (1 + 1e-9) for t in ticks)


def test_log_ticks_prefer_round_values() -> None:
    assert log_ticks(1.1e-4, 9.9e-3) == pytest.approx([2e-4, 5e-4, 1e-3, 2e-3, 5e-3])
    assert log_ticks(1e-4, 1e-2) == pytest.approx([1e-4, 1e-3, 1e-2])  # 1-2-5 would be 7 ticks
    assert log_ticks(1e-9, 1e3) == pytest.approx([1e-9, 1e-6, 1e-3, 1.0, 1e3])  # every third decade
    assert log_ticks(9.77e-4, 1.64e-3) == pytest.approx([1e-3, 1.25e-3, 1.5e-3])  # too narrow for 1-2-5: linear
    with pytest.raises(ValueError, match="0 < low <= high"):
        log_ticks(0.0, 1.0)


def test_tick_texts_are_short_and_in_one_notation() -> None:
    assert tick_texts([0.01, 0.1, 1.0, 250.0]) == ["0.01", "0.1", "1", "250"]
    assert tick_texts([1e-4, 1e-3, 1e-2]) == ["1e-4", "1e-3", "1e-2"]  # not 1e-4, 1e-3, 0.01
    assert tick_texts([2.5e-3, 1000.0, 3e5, 9.9999e-5]) == ["2.5e-3", "1e3", "3e5", "1e-4"]


def _log_panel(low: float, high: float) -> tuple[Figure, Axes]:
    """A report-sized panel (4.2 x 3.2 in) with points spread over ``[low, high]`` on a log x axis."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2, 3.2))
    fig.subplots_adjust(left=0.8 / 4.2, bottom=0.55 / 3.2)  # the report's margins (`html._figure`), in inches
    ax = fig.subplots()
    ax.scatter([low * (high / low) ** (i / 9) for i in range(10)], [0.01 + 0.001 * i for i in range(10)])
    ax.set_xscale("log")
    return fig, ax


def test_matplotlib_alone_overlaps_labels_on_a_short_log_span() -> None:
    """The problem `log_x` solves, as the check below sees it: minor ticks labelled side by side."""
    fig, _ = _log_panel(3e-4, 2e-3)
    assert overlapping_tick_labels(fig)


@pytest.mark.parametrize(("low", "high"), [(1e-4, 1e-2), (2.1e-4, 3.9e-4), (3e-4, 2e-3), (1e-4, 0.9), (1e-8, 1e2),
                                           (0.0031, 0.0098), (9.77e-4, 1.64e-3), (9e-5, 1.1e-4)])
def test_a_report_sized_log_panel_has_no_overlapping_labels(low: float, high: float) -> None:
    fig, ax = _log_panel(low, high)
    log_x(ax)
    linear_axis(ax.yaxis)
    assert overlapping_tick_labels(fig) == []
    low_view, high_view = ax.get_xlim()
    assert all(low_view <= t <= high_view for t in ax.get_xticks())
    assert len([t for t in ax.get_xticklabels() if t.get_text()]) >= 2


def test_every_status_has_its_own_marker() -> None:
    assert tuple(STATUS_MARKERS) == STATUSES
    assert len(set(STATUS_MARKERS.values())) == len(STATUSES)
