"""The paper's table for a suite: per model, ``Model``, ``Model + MG`` and ``Gain`` (test metrics of the
best trials, the layout of the seed's results table), then, where the suite confirmed the model, the
means over seeds with the paired MG − no MG difference, its 95% interval and the verdict, and, on
the Amazon datasets, the published numbers (`mgtune.report.card_data.published_results`), each row
naming its source.
"""

from __future__ import annotations

from collections.abc import Sequence

from mgtune.report.card_data import published_datasets, published_results
from mgtune.report.confirmed import Confirmed, confirmed_table
from mgtune.report.tables import NO_COMPARISON, Comparison, Table, abbrev, comparison_table, metric_keys, to_markdown

__all__ = ["PAPER_NOTE", "paper_table", "paper_markdown", "paper_sources"]

PAPER_NOTE = (
    "Per model: the test metrics of the best no-MG and MG trials (chosen on validation) and Gain = (MG - no MG) "
    "/ no MG. Confirmed models add the means ± sd over seeds, MG − no MG with its 95% t-interval, and the "
    "verdict (\"MG helps\" only when the interval lies above zero). Published rows are copied from the source "
    "they name (their data splits and budgets may differ); — where a source has no number."
)


def paper_table(dataset: str, comparisons: Sequence[Comparison], confirmed: Sequence[Confirmed],
                ks: Sequence[int]) -> Table:
    keys = metric_keys(ks)
    by_model = {c.group.model: c for c in confirmed}
    rows: list[list[str]] = []
    for comp in comparisons:
        model = comp.mg.model
        rows += comparison_table([comp], ks).rows
        if model in by_model:
            conf_rows = confirmed_table([by_model[model]], ks).rows
            rows += [r for r in conf_rows if not r[0].startswith("p (")]  # the interval says it; p is in its section
        rows += _published_rows(model, dataset, keys)
    return Table(["Model", *(abbrev(k) for k in keys)], rows)


def paper_sources(dataset: str, models: Sequence[str]) -> list[str]:
    """One line per source cited in the table: its key, title and address."""
    cited: dict[str, dict[str, str]] = {}
    for model in models:
        cited.update(published_results(model, dataset)[0])
    return [f"`{k}`: {s['title']}; {s['url']}" for k, s in sorted(cited.items())]


def paper_markdown(dataset: str, comparisons: Sequence[Comparison], confirmed: Sequence[Confirmed],
                   ks: Sequence[int], failed: Sequence[str] = ()) -> list[str]:
    """The report's "The paper's table" section; ``failed``: one line per study of the suite that failed."""
    sources = paper_sources(dataset, [c.mg.model for c in comparisons])
    parts = ["## The paper's table: MG vs no-MG", PAPER_NOTE,
             to_markdown(paper_table(dataset, comparisons, confirmed, ks), bold_header=True) if comparisons
             else NO_COMPARISON]
    if sources:
        parts.append("Sources:\n" + "\n".join(f"- {line}" for line in sources))
    if failed:
        parts.append("Failed studies (not in the table):\n" + "\n".join(f"- {line}" for line in failed))
    return parts


def _published_rows(model: str, dataset: str, keys: Sequence[str]) -> list[list[str]]:
    if dataset.lower() not in published_datasets():
        return []
    _, rows = published_results(model, dataset)
    out = []
    for row in sorted(rows, key=lambda r: (r["mg"], r["source"])):
        label = f"{model.upper()}{' + MG' if row['mg'] else ''} (published: {row['source']})"
        out.append([label, *(f"{row['metrics'][k]:.4f}" if k in row["metrics"] else "—" for k in keys)])
    return out
