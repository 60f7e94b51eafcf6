"""Confirmed numbers: an MG study's ``confirm/`` folder (`mgtune confirm`) shown in the report.

For each MG study with a confirmation, its first-ranked configuration over seeds: test metrics as
mean ± sd per arm, the paired difference MG − no MG with its 95% t-interval and p-value, and the
verdict, which says "MG helps" only when the interval lies above zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mgtune.report.tables import Group, Table, abbrev, metric_keys, plus_minus, to_markdown
from mgtune.store.confirmation import ConfigResult, load_confirmation

if TYPE_CHECKING:
    from mgtune.store.stats import ArmStats

__all__ = ["CONFIRMED_NOTE", "Confirmed", "find_confirmed", "confirmed_table", "confirmed_lines",
           "confirmed_markdown"]

CONFIRMED_NOTE = (
    "Each confirmed model's best configuration re-trained over several seeds, with MG and with MG off "
    "(`mgtune confirm`). Test metrics: mean ± sd (ddof = 1) per arm; MG − no MG is the mean of the per-seed "
    "differences with its 95% t-interval, and p comes from a two-sided paired t-test. A model is marked "
    "\"MG helps\" only when the interval lies above zero."
)


@dataclass(frozen=True, eq=False)
class Confirmed:
    group: Group  # the MG group whose study was confirmed
    study_name: str
    result: ConfigResult  # its first-ranked configuration


def find_confirmed(groups: Sequence[Group]) -> list[Confirmed]:
    """The confirmations of the MG studies in ``groups`` that have at least one finished run."""
    out = []
    for g in groups:
        if not g.mg:
            continue
        for study in g.studies:
            conf = load_confirmation(study.path)
            if conf is not None and conf.rows:
                out.append(Confirmed(g, study.name, conf.results()[0]))
    return out


def confirmed_table(items: Sequence[Confirmed], ks: Sequence[int]) -> Table:
    """Per model: no-MG and MG rows (mean ± sd), then MG − no MG [95% CI], p and the verdict per metric."""
    keys = metric_keys(ks)
    rows = []
    for c in items:
        r, label = c.result, c.group.model.upper()
        n = max(r.arms["mg"][r.metric].n, r.arms["nomg"][r.metric].n)
        rows.append([f"{label} ({n} seeds)", *(_pm(r.arms["nomg"].get(k)) for k in keys)])
        rows.append([f"{label} + MG", *(_pm(r.arms["mg"].get(k)) for k in keys)])
        rows.append(["MG − no MG [95% CI]", *(_diff(r, k) for k in keys)])
        rows.append(["p (paired t-test)", *(_p(r, k) for k in keys)])
        rows.append(["Verdict", *(r.tests[k].verdict if k in r.tests else "—" for k in keys)])
    return Table(["Model", *(abbrev(k) for k in keys)], rows)


def confirmed_lines(items: Sequence[Confirmed], metric: str) -> list[str]:
    """One sentence per confirmed model on test ``metric`` (the study's own metric if ``metric`` is absent)."""
    lines = []
    for c in items:
        r = c.result
        key = metric if metric in r.tests else r.metric
        t = r.tests[key]
        lines.append(f"{c.group.model.upper()} (study {c.study_name}, trial {r.candidate.trial_id}, {t.n} paired "
                     f"seeds): {t.verdict} on test {key}; MG − no MG = {_diff(r, key)}, p = {_p(r, key)}.")
    return lines


def confirmed_markdown(items: Sequence[Confirmed], metric: str, ks: Sequence[int]) -> list[str]:
    """The report's "Confirmed over seeds" section (``items`` from `find_confirmed`), or nothing."""
    if not items:
        return []
    return ["## Confirmed over seeds: MG vs no-MG", CONFIRMED_NOTE,
            "\n".join(f"- {line}" for line in confirmed_lines(items, metric)),
            to_markdown(confirmed_table(items, ks), bold_header=True)]


def _pm(stats: ArmStats | None) -> str:
    return "—" if stats is None else plus_minus(stats.mean, stats.sd)


def _diff(r: ConfigResult, key: str) -> str:
    t = r.tests.get(key)
    if t is None or not math.isfinite(t.mean):
        return "—"
    ci = f" [{t.ci_low:+.4f}, {t.ci_high:+.4f}]" if math.isfinite(t.ci_low) else " [n/a]"
    return f"{t.mean:+.4f}{ci}"


def _p(r: ConfigResult, key: str) -> str:
    t = r.tests.get(key)
    return "—" if t is None or not math.isfinite(t.p_value) else f"{t.p_value:.3g}"
