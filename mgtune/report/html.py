"""The HTML report: the Markdown tables plus plots, as one self-contained page (inline base64 PNGs).

Plots are drawn on matplotlib ``Figure`` objects with the Agg canvas, never through pyplot, so the
caller's backend and global figure state are left alone.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from mgtune.errors import DataFormatError
from mgtune.report.axes import STATUS_MARKERS, linear_axis, log_x
from mgtune.report.confirmed import CONFIRMED_NOTE, Confirmed, confirmed_lines, confirmed_table
from mgtune.report.paper import PAPER_NOTE
from mgtune.report.tables import (
    GAIN_NOTE,
    NO_COMPARISON,
    SELECTION_RULE,
    STATUS_LABELS,
    TIME_NOTE,
    Comparison,
    Group,
    Table,
    best_table,
    comparison_table,
    studies_table,
    summary_line,
    trials_table,
)
from mgtune.store.results import FINISHED, rank_completed, selectable

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mgtune.report.load import Study

__all__ = ["render_html", "param_importances", "curves_figure", "sweep_figure", "CURVES_PER_GROUP", "SWEEP_PARAMS"]

CURVES_PER_GROUP = 3  # validation curves drawn for the best few trials of each group the selection rule may choose
SWEEP_PARAMS = ("flip_interval", "flip_ratio", "learning_rate")
LOG_PARAMS = ("learning_rate",)
_NOT_ENOUGH = "not enough trials (needs at least 2 completed trials whose parameters vary)"
_COLOURS = {False: "tab:blue", True: "tab:orange"}
_LINES = {"completed": "-", "early_stopped": ":", "budget_stopped": "--"}  # curves of trials stopped early
_LEGEND_ROW = 0.22  # inches per row of a figure's legend below its panels
_STYLE = (
    # the page never scrolls sideways: a table wider than the page scrolls inside its own box, and a
    # configuration wraps between its key=value items
    "body{font-family:sans-serif;max-width:1240px;margin:2em auto;padding:0 1em;overflow-wrap:break-word}"
    ".scroll{overflow-x:auto;max-width:100%}"
    "table{border-collapse:collapse;margin:1em 0;font-size:85%}"
    "td,th{border:1px solid #ccc;padding:3px 5px;text-align:right;vertical-align:top}"
    "td:first-child,th:first-child,.items{text-align:left}"
    "td.items{min-width:12em}td.items span{white-space:nowrap}"
    "img{max-width:100%;height:auto}"
)


def render_html(dataset: str, groups: Sequence[Group], comparisons: Sequence[Comparison],
                metric: str, ks: Sequence[int], confirmed: Sequence[Confirmed], lead: Table | None = None) -> str:
    """The whole page (``confirmed``: `find_confirmed(groups)`; ``lead``: a suite's paper table, shown first);
    raises `DataFormatError` for unreadable progress files or Optuna storage."""
    esc = html.escape
    body = [
        f"<h1>mgtune report: {esc(dataset)}</h1>",
        f"<p>{esc(summary_line(metric, ks))}</p>",
        *([f"<h2>The paper's table: MG vs no-MG</h2><p>{esc(PAPER_NOTE)}</p>", _table(lead)] if lead else []),
        f"<p><b>Selection rule.</b> {esc(SELECTION_RULE.format(metric=metric))}</p>",
        "<h2>Best configuration per model</h2>", _table(best_table(groups, metric, ks)),
        f"<h2>Trials per model</h2><p>{esc(TIME_NOTE)}</p>", _table(trials_table(groups)),
        f"<h2>MG vs no-MG</h2><p>{esc(GAIN_NOTE)}</p>",
        _table(comparison_table(comparisons, ks)) if comparisons else f"<p>{esc(NO_COMPARISON)}</p>",
        *_confirmed(confirmed, metric, ks),
        "<h2>Validation curves</h2>",
        f"<p>Validation {esc(metric)} per epoch of the best {CURVES_PER_GROUP} trials of each model and MG "
        "setting that the selection rule may choose (completed; in a study its budget ended, also those "
        "stopped early: dashed, cut by the budget; dotted, stopped by ASHA); the dot marks each trial's best "
        "epoch.</p>",
        _img(curves_figure(groups, metric), f"validation curves of {metric}"),
        "<h2>Metric against MG parameters</h2>",
        f"<p>Best validation {esc(metric)} of every trial, one marker per status: filled circle, completed; "
        "hollow circle, stopped by ASHA, and hollow square, cut by the budget (both from a shortened run); "
        "diverged (x) and errored (+) trials have no metric and sit on the bottom edge, where they were "
        "sampled.</p>",
        *(_img(sweep_figure(model_groups, metric), f"{model_groups[0].model} parameter sweep")
          for model_groups in _by_model(groups)),
        "<h2>Parameter importances</h2>",
        "<p>Optuna's default importance evaluator on each stored study (its completed trials, against "
        "the metric the study optimised).</p>",
        *(_importance_block(g, s) for g in groups for s in g.studies),
        "<h2>Studies</h2>", _table(studies_table(groups)),
    ]
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>mgtune report: {esc(dataset)}</title><style>{_STYLE}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _confirmed(items: Sequence[Confirmed], metric: str, ks: Sequence[int]) -> list[str]:
    """The "Confirmed over seeds" section (`mgtune.report.confirmed`), or nothing."""
    if not items:
        return []
    lines = "".join(f"<li>{html.escape(line)}</li>" for line in confirmed_lines(items, metric))
    return ["<h2>Confirmed over seeds: MG vs no-MG</h2>", f"<p>{html.escape(CONFIRMED_NOTE)}</p><ul>{lines}</ul>",
            _table(confirmed_table(items, ks))]


def _table(table: Table) -> str:
    """A table in its own sideways-scrolling box; `Table.lists` cells as items that wrap between them."""
    head = "".join(_header(h, i in table.lists) for i, h in enumerate(table.header))
    rows = "".join("<tr>" + "".join(_cell(c, i in table.lists) for i, c in enumerate(row)) + "</tr>"
                   for row in table.rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


def _header(text: str, items: bool) -> str:
    # a header such as NDCG@10 may break before its cutoff, so a column is no wider than its numbers
    cls = ' class="items"' if items else ""
    return f"<th{cls}>{html.escape(text).replace('@', '<wbr>@')}</th>"


def _cell(text: str, items: bool) -> str:
    if not items:
        return f"<td>{html.escape(text)}</td>"
    parts = text.split(", ")
    spans = " ".join(f"<span>{html.escape(p)}{',' if i < len(parts) - 1 else ''}</span>" for i, p in enumerate(parts))
    return f'<td class="items">{spans}</td>'


def _img(fig: Figure, alt: str) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _figure(n_panels: int, ncols: int, panel: tuple[float, float] = (4.2, 3.2),
            left: float = 0.8, legend_rows: int = 0) -> tuple[Figure, list[Axes]]:
    """A grid of ``panel``-sized axes (inches). Margins are fixed in inches rather than computed by a
    layout engine, which would double the drawing time; ``left`` leaves room for tick labels,
    ``legend_rows`` for a figure legend below the panels."""
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, n_panels))
    nrows = -(-n_panels // ncols)
    legend = _LEGEND_ROW * legend_rows + (0.1 if legend_rows else 0.0)
    width, height = panel[0] * ncols, panel[1] * nrows + legend
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - 0.15 / width, bottom=(0.55 + legend) / height,
                        top=1 - 0.35 / height, wspace=0.35, hspace=0.55)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _note(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _by_model(groups: Sequence[Group]) -> list[list[Group]]:
    models = list(dict.fromkeys(g.model for g in groups))
    return [[g for g in groups if g.model == m] for m in models]


def curves_figure(groups: Sequence[Group], metric: str) -> Figure:
    """Per group, the validation curves of its best few trials the selection rule may choose (`selectable`)."""
    fig, axes = _figure(len(groups), 3)
    col = f"valid_{metric}"
    for ax, g in zip(axes, groups):
        ax.set_title(g.label)
        ranked = rank_completed(g.trials.to_dict("records"), metric, selectable(g.budget_ended))
        if not ranked:
            _note(ax, "no completed trial")
            continue
        for row in ranked[:CURVES_PER_GROUP]:
            study = g.studies[int(row["study"])]
            progress = study.progress(str(row["trial_dir"]), metric)
            status = str(row["status"])
            how = "" if status == "completed" else f", {STATUS_LABELS[status]}"
            line = ax.plot(progress["epoch"], progress[col], _LINES[status],
                           label=f"{row['trial_id']} ({row[col]:.4f}{how})")[0]
            at_best = progress[progress["epoch"] == row["best_epoch"]]
            ax.plot(at_best["epoch"], at_best[col], "o", color=line.get_color())
        linear_axis(ax.xaxis, integer=True)
        linear_axis(ax.yaxis)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"valid {metric}")
        ax.legend(fontsize="small")
    return fig


def sweep_figure(groups: Sequence[Group], metric: str) -> Figure:
    """One model's trials: the validation metric against each of `SWEEP_PARAMS`, a marker per status
    (`STATUS_MARKERS`), one legend below the panels."""
    drawn_statuses = [(g, status) for g in groups for status in STATUS_MARKERS if g.count(status)]
    legend_rows = max(sum(1 for member, _ in drawn_statuses if member is g) for g in groups)  # a column per group
    fig, axes = _figure(len(SWEEP_PARAMS), len(SWEEP_PARAMS), legend_rows=legend_rows)
    col = f"valid_{metric}"
    for ax, param in zip(axes, SWEEP_PARAMS):
        ax.set_title(f"{groups[0].model.upper()}: {param}")
        drawn = False
        for g, status in drawn_statuses:
            if f"param_{param}" not in g.trials.columns:
                continue
            pts = g.trials[(g.trials["status"] == status) & g.trials[f"param_{param}"].notna()]
            if pts.empty:
                continue
            marker, filled = STATUS_MARKERS[status]
            colour = _COLOURS[g.mg]
            label = f"{g.label}: {STATUS_LABELS[status]}"
            if status in FINISHED:
                ax.scatter(pts[f"param_{param}"], pts[col], marker=marker, facecolors=colour if filled else "none",
                           edgecolors=colour, label=label)
            else:  # no metric: on the bottom edge, at the sampled value
                ax.scatter(pts[f"param_{param}"], [0.0] * len(pts), marker=marker, color=colour, label=label,
                           transform=ax.get_xaxis_transform(), clip_on=False)
            drawn = True
        if not drawn:
            _note(ax, f"{param} not sampled")
            continue
        log = param in LOG_PARAMS
        if log:
            ax.set_xscale("log")  # before `_include_x`: a linear view's margin may reach below zero
        _include_x(ax, [g.trials[f"param_{param}"] for g in groups if f"param_{param}" in g.trials.columns], log)
        if log:
            log_x(ax)
        else:
            linear_axis(ax.xaxis, integer=param == "flip_interval")
        linear_axis(ax.yaxis)
        ax.set_xlabel(param)
        ax.set_ylabel(f"valid {metric}")
    by_label: dict[str, Artist] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            by_label.setdefault(label, handle)
    if by_label:
        _legend_by_group(fig, groups, by_label)
    return fig


def _legend_by_group(fig: Figure, groups: Sequence[Group], by_label: dict[str, Artist]) -> None:
    """One legend below the panels, one column per group (matplotlib fills a legend column by column)."""
    from matplotlib.lines import Line2D

    columns = [[(h, label) for label, h in by_label.items() if label.startswith(f"{g.label}: ")] for g in groups]
    columns = [c for c in columns if c]
    rows = max(len(c) for c in columns)
    blank = (Line2D([], [], linestyle="none"), "")
    entries = [entry for column in columns for entry in column + [blank] * (rows - len(column))]
    fig.legend([h for h, _ in entries], [label for _, label in entries], loc="lower center", ncol=len(columns),
               fontsize="small", frameon=False, bbox_to_anchor=(0.5, 0.0))


def _include_x(ax: Axes, columns: Sequence[pd.Series], log: bool) -> None:
    """Widen the x view to every sampled value: the failed trials' markers (on the bottom edge, outside the
    data coordinates) do not widen it themselves, and unclipped they would land in the next panel."""
    import numpy as np

    values = np.concatenate([pd.to_numeric(c, errors="coerce").dropna().to_numpy(float) for c in columns])
    values = values[values > 0] if log else values
    if not len(values):
        return
    low, high = ax.get_xlim()
    lo, hi = float(values.min()), float(values.max())
    if log:
        pad = (hi / lo) ** 0.05 if hi > lo else 1.5
        ax.set_xlim(min(low, lo / pad) if low > 0 else lo / pad, max(high, hi * pad))
    else:
        pad = (hi - lo) * 0.05 or 0.5
        ax.set_xlim(min(low, lo - pad), max(high, hi + pad))


def param_importances(study: Study) -> dict[str, float] | None:
    """Optuna's importances over the study's completed trials; None when there are too few to judge.

    Only parameters that vary among the completed trials are evaluated (a constant one has no
    importance to measure); fewer than two such trials, or no varying parameter, gives None.
    """
    import sqlite3
    from urllib.parse import quote

    import optuna
    from optuna.importance import get_param_importances
    from sqlalchemy.exc import SQLAlchemyError

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Opened read-only through sqlite's own URI (percent-encoded, so any folder name works):
    # reporting never creates, locks for writing or migrates a study's storage.
    uri = f"file:{quote(str(study.optuna_db.resolve()))}?mode=ro"
    try:
        storage = optuna.storages.RDBStorage(
            "sqlite://", engine_kwargs={"creator": lambda: sqlite3.connect(uri, uri=True)})
        loaded = optuna.load_study(study_name="mgtune", storage=storage)
        trials = loaded.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    except KeyError:
        raise DataFormatError(f"{study.optuna_db}: holds no Optuna study named 'mgtune'") from None
    except SQLAlchemyError as exc:
        raise DataFormatError(f"{study.optuna_db}: not a readable Optuna storage ({type(exc).__name__})") from None
    names = sorted({p for t in trials for p in t.params})
    varying = [p for p in names if len({repr(t.params.get(p)) for t in trials}) > 1]
    if len(trials) < 2 or not varying:
        return None
    return get_param_importances(loaded, params=varying)


def _importance_block(group: Group, study: Study) -> str:
    title = f"{group.label}, study {study.name}"
    importances = param_importances(study)
    if importances is None:
        return f"<p>{html.escape(title)}: {_NOT_ENOUGH}.</p>"
    fig, (ax,) = _figure(1, 1, (6.0, 1.0 + 0.35 * len(importances)), left=1.4)
    names = list(importances)[::-1]
    ax.barh(names, [importances[n] for n in names], color=_COLOURS[group.mg])
    linear_axis(ax.xaxis)
    ax.set_xlabel(f"importance for validation {study.metric}")
    ax.set_title(title)
    return f"<h3>{html.escape(title)}</h3>" + _img(fig, f"parameter importances of {study.name}")
