"""The robustness section: curves and a drop table from ``<study>/robustness/`` (`mgtune.store.robustness`).

``write_robustness_report`` writes ``curves.png`` (test recall@20 and ndcg@20 against the level,
one row of panels per kind, MG and no MG with a band of ± one sd over seeds) and ``robustness.md``
(the figure and the table of relative drops with the paired MG − no MG test) into the study's
``robustness/`` folder; `robustness_md` gives the same section to the reproduction card.
Plots are drawn on a matplotlib ``Figure`` with the Agg canvas, never through pyplot.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mgtune.files import atomic_open, write_text
from mgtune.report.tables import Table, mean_sd, signed, to_markdown
from mgtune.store import CURVES_FILE, ROBUST_DIR, ROBUST_PAGE
from mgtune.store.robustness import SHOWN, load_robustness, robustness_summary
from mgtune.store.stats import CONFIDENCE, TEST_NAME, arm_stats

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["write_robustness_report", "robustness_md", "robustness_sections", "curves_figure"]

_ARMS = (("nomg", "no MG", "tab:blue"), ("mg", "MG", "tab:red"))
_LEVEL = {"gaussian": "noise (feature sd)", "mask": "share of items masked", "swap": "share of items swapped"}


def write_robustness_report(study_dir: Path) -> list[Path]:
    """Write ``curves.png`` and ``robustness.md`` into ``<study>/robustness/``; [] without results."""
    loaded = load_robustness(study_dir)
    summary = robustness_summary(study_dir, loaded)
    if loaded is None or summary is None:
        return []
    _, rows = loaded
    folder = Path(study_dir) / ROBUST_DIR
    png, md = folder / CURVES_FILE, folder / ROBUST_PAGE
    title = f"{rows[0]['model'].upper()} on {rows[0]['dataset']}" if rows else Path(study_dir).name
    fig = curves_figure(rows, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    with atomic_open(png, "wb") as fh:
        fh.write(buf.getvalue())
    write_text(md, f"# Robustness: {title}\n\n" + robustness_md(summary, CURVES_FILE) + "\n")
    return [md, png]


def robustness_md(summary: dict[str, Any], image: str | None) -> str:
    """The section's Markdown from `robustness_summary`: what was done, the curves (``image``) and the drop table."""
    seeds = ", ".join(map(str, summary.get("seeds", [])))
    parts = [
        f"Study `{summary.get('study')}`, configuration trial `{summary.get('source_trial')}`, seeds {seeds}: each "
        f"trained model evaluated on the test split with its {summary.get('modality')} item features spoiled at "
        f"test time (kinds {', '.join(summary.get('kinds', []))}; mask fill {summary.get('mask_fill')}; "
        f"perturbation seed {summary.get('perturb_seed')}). Every model is rebuilt from the spoiled features (kNN "
        f"graphs, feature buffers) before its trained weights are loaded. {summary.get('evaluations')} "
        f"evaluations, {summary.get('seconds')} s.",
    ]
    if image:
        parts.append(f"![test recall@20 and ndcg@20 against the level, MG and no MG, ± 1 sd over seeds]({image})")
    parts.append(
        f"Relative drop = 1 − metric / the same run's metric at level 0 (mean ± sd over seeds). MG − no MG: "
        f"the paired difference of the drops, {CONFIDENCE:.0%} CI and p ({TEST_NAME}). \"MG helps\" only when the "
        "whole interval is below zero (MG loses less)."
    )
    table_rows = []
    for d in summary["drops"]:
        diff = d["difference"]
        table_rows.append([
            d["kind"], f"{d['level']:g}", d["metric"], mean_sd(d["value"]["nomg"]), mean_sd(d["value"]["mg"]),
            mean_sd(d["drop"]["nomg"], 3), mean_sd(d["drop"]["mg"], 3), signed(diff["mean"]),
            f"[{signed(diff['ci_low'])}, {signed(diff['ci_high'])}]",
            "—" if diff["p_value"] is None else f"{diff['p_value']:.3g}", diff["verdict"],
        ])
    header = ["Kind", "Level", "Metric", "no MG", "MG", "Drop no MG", "Drop MG", "MG − no MG drop",
              f"{CONFIDENCE:.0%} CI", "p", "Verdict"]
    parts.append(to_markdown(Table(header, table_rows)))
    return "\n\n".join(parts)


def robustness_sections(study_dirs: Sequence[Path]) -> str:
    """``## Robustness`` sections for a report page, one per study with results; the curves are linked
    where `write_robustness_report` drew them."""
    parts = []
    for d in study_dirs:
        summary = robustness_summary(d)
        if summary is not None:
            curves = summary["curves"] if Path(summary["curves"]).is_file() else None
            parts.append(f"## Robustness: {summary.get('study')}\n\n" + robustness_md(summary, curves))
    return "".join(f"\n{p}\n" for p in parts)


def curves_figure(rows: Sequence[dict[str, Any]], title: str) -> Figure:
    """One row of panels per kind, one column per metric of `SHOWN`: mean and ± 1 sd band per arm."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    fig = Figure(figsize=(4.2 * len(SHOWN), 3.0 * max(1, len(kinds)) + 0.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(max(1, len(kinds)), len(SHOWN), squeeze=False)
    for i, kind in enumerate(kinds):
        for j, metric in enumerate(SHOWN):
            ax = axes[i][j]
            for arm, label, color in _ARMS:
                levels = sorted({r["level"] for r in rows if r["kind"] == kind and r["arm"] == arm})
                stats = [arm_stats([r[f"test_{metric}"] for r in rows if r["kind"] == kind and r["arm"] == arm
                                    and r["level"] == lv and r[f"test_{metric}"] is not None]) for lv in levels]
                mean = [s.mean for s in stats]
                sd = [s.sd if math.isfinite(s.sd) else 0.0 for s in stats]
                ax.plot(levels, mean, marker="o", color=color, label=label)
                ax.fill_between(levels, [m - s for m, s in zip(mean, sd)], [m + s for m, s in zip(mean, sd)],
                                color=color, alpha=0.2)
            ax.set_title(f"{kind}: test {metric}", fontsize=10)
            ax.set_xlabel(_LEVEL.get(kind, "level"), fontsize=9)
            ax.grid(alpha=0.3)
            if i == 0 and j == 0:
                ax.legend(fontsize=8)
    fig.suptitle(f"{title}: robustness (mean ± 1 sd over seeds)", fontsize=11)
    fig.tight_layout()
    return fig


