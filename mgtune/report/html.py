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

from mgtune.errors import DataFormatError
from mgtune.report.confirmed import CONFIRMED_NOTE, Confirmed, confirmed_lines, confirmed_table
from mgtune.report.paper import PAPER_NOTE
from mgtune.report.tables import (
    GAIN_NOTE,
    NO_COMPARISON,
    SELECTION_RULE,
    Comparison,
    Group,
    Table,
    best_table,
    comparison_table,
    studies_table,
    summary_line,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from mgtune.report.load import Study

__all__ = ["render_html", "param_importances", "CURVES_PER_GROUP", "SWEEP_PARAMS"]

CURVES_PER_GROUP = 3  # validation curves drawn for the best few completed trials of each group
SWEEP_PARAMS = ("flip_interval", "flip_ratio", "learning_rate")
_NOT_ENOUGH = "not enough trials (needs at least 2 completed trials whose parameters vary)"
_COLOURS = {False: "tab:blue", True: "tab:orange"}


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
        f"<h2>MG vs no-MG</h2><p>{esc(GAIN_NOTE)}</p>",
        _table(comparison_table(comparisons, ks)) if comparisons else f"<p>{esc(NO_COMPARISON)}</p>",
        *_confirmed(confirmed, metric, ks),
        "<h2>Validation curves</h2>",
        f"<p>Validation {esc(metric)} per epoch of the best {CURVES_PER_GROUP} completed trials of each "
        "model and MG setting; the dot marks each trial's best epoch.</p>",
        _img(_curves_figure(groups, metric), f"validation curves of {metric}"),
        "<h2>Metric against MG parameters</h2>",
        f"<p>Best validation {esc(metric)} of every finished trial. Filled: completed; hollow: stopped "
        "by ASHA (its value is from a shortened run).</p>",
        *(_img(_sweep_figure(model_groups, metric), f"{model_groups[0].model} parameter sweep")
          for model_groups in _by_model(groups)),
        "<h2>Parameter importances</h2>",
        "<p>Optuna's default importance evaluator on each stored study (its completed trials, against "
        "the metric the study optimised).</p>",
        *(_importance_block(g, s) for g in groups for s in g.studies),
        "<h2>Studies</h2>", _table(studies_table(groups)),
    ]
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
             "td:first-child,th:first-child,td:last-child{text-align:left}img{max-width:100%}")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>mgtune report: {esc(dataset)}</title><style>{style}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _confirmed(items: Sequence[Confirmed], metric: str, ks: Sequence[int]) -> list[str]:
    """The "Confirmed over seeds" section (`mgtune.report.confirmed`), or nothing."""
    if not items:
        return []
    lines = "".join(f"<li>{html.escape(line)}</li>" for line in confirmed_lines(items, metric))
    return ["<h2>Confirmed over seeds: MG vs no-MG</h2>", f"<p>{html.escape(CONFIRMED_NOTE)}</p><ul>{lines}</ul>",
            _table(confirmed_table(items, ks))]


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def _img(fig: Figure, alt: str) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _figure(n_panels: int, ncols: int, panel: tuple[float, float] = (4.2, 3.2),
            left: float = 0.8) -> tuple[Figure, list[Axes]]:
    """A grid of ``panel``-sized axes (inches). Margins are fixed in inches rather than computed by a
    layout engine, which would double the drawing time; ``left`` leaves room for tick labels."""
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, n_panels))
    nrows = -(-n_panels // ncols)
    width, height = panel[0] * ncols, panel[1] * nrows
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - 0.15 / width, bottom=0.55 / height,
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


def _curves_figure(groups: Sequence[Group], metric: str) -> Figure:
    from matplotlib.ticker import MaxNLocator

    fig, axes = _figure(len(groups), 3)
    col = f"valid_{metric}"
    for ax, g in zip(axes, groups):
        ax.set_title(g.label)
        done = g.trials[g.trials["status"] == "completed"]
        if done.empty:
            _note(ax, "no completed trial")
            continue
        for _, row in done.nlargest(CURVES_PER_GROUP, col, keep="first").iterrows():
            study = g.studies[int(row["study"])]
            progress = study.progress(str(row["trial_dir"]), metric)
            line = ax.plot(progress["epoch"], progress[col], label=f"{row['trial_id']} ({row[col]:.4f})")[0]
            at_best = progress[progress["epoch"] == row["best_epoch"]]
            ax.plot(at_best["epoch"], at_best[col], "o", color=line.get_color())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"valid {metric}")
        ax.legend(fontsize="small")
    return fig


def _sweep_figure(groups: Sequence[Group], metric: str) -> Figure:
    from matplotlib.ticker import MaxNLocator

    fig, axes = _figure(len(SWEEP_PARAMS), len(SWEEP_PARAMS))
    col = f"valid_{metric}"
    for ax, param in zip(axes, SWEEP_PARAMS):
        ax.set_title(f"{groups[0].model.upper()}: {param}")
        drawn = False
        for g in groups:
            if f"param_{param}" not in g.trials.columns:
                continue
            for status, face in (("completed", _COLOURS[g.mg]), ("early_stopped", "none")):
                pts = g.trials[(g.trials["status"] == status) & g.trials[f"param_{param}"].notna()]
                if pts.empty:
                    continue
                ax.scatter(pts[f"param_{param}"], pts[col], facecolors=face, edgecolors=_COLOURS[g.mg],
                           label=f"{g.label} ({status.replace('_', ' ')})")
                drawn = True
        if not drawn:
            _note(ax, f"{param} not sampled")
            continue
        if param == "learning_rate":
            ax.set_xscale("log")
        elif param == "flip_interval":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel(param)
        ax.set_ylabel(f"valid {metric}")
        ax.legend(fontsize="small")
    return fig


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
    ax.set_xlabel(f"importance for validation {study.metric}")
    ax.set_title(title)
    return f"<h3>{html.escape(title)}</h3>" + _img(fig, f"parameter importances of {study.name}")
