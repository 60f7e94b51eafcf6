"""The Markdown page of a dataset's report: the tables of `tables`, then the confirmed numbers."""

from __future__ import annotations

from collections.abc import Sequence

from mgtune.report.confirmed import Confirmed, confirmed_markdown
from mgtune.report.tables import (
    GAIN_NOTE,
    NO_COMPARISON,
    SELECTION_RULE,
    TIME_NOTE,
    Comparison,
    Group,
    best_table,
    comparison_table,
    studies_table,
    summary_line,
    to_markdown,
    trials_table,
)

__all__ = ["render_markdown"]


def render_markdown(dataset: str, groups: Sequence[Group], comparisons: Sequence[Comparison],
                    metric: str, ks: Sequence[int], confirmed: Sequence[Confirmed], lead: Sequence[str] = ()) -> str:
    """The markdown page; ``confirmed`` is `confirmed.find_confirmed(groups)`; ``lead``: sections shown first
    (a suite's paper table, `mgtune.report.paper`)."""
    parts = [
        f"# mgtune report: {dataset}",
        summary_line(metric, ks),
        *lead,
        "**Selection rule.** " + SELECTION_RULE.format(metric=metric),
        "## Best configuration per model",
        to_markdown(best_table(groups, metric, ks)),
        "## Trials per model",
        TIME_NOTE,
        to_markdown(trials_table(groups)),
        "## MG vs no-MG",
        GAIN_NOTE,
        to_markdown(comparison_table(comparisons, ks), bold_header=True) if comparisons else NO_COMPARISON,
        *confirmed_markdown(confirmed, metric, ks),
        "## Studies",
        to_markdown(studies_table(groups)),
    ]
    return "\n\n".join(parts) + "\n"
