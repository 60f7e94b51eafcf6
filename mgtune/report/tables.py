"""Best configuration per model and MG setting, and the MG vs no-MG comparison.

Selection follows the rule in `SELECTION_RULE` (`mgtune.store.results.select_best`): validation
picks, test is only copied. Tables are plain header + string rows so that Markdown, HTML and CSV
show the very same numbers; `to_markdown` and the number formats here serve every page.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from mgtune.report.load import METRIC_ABBREV, Study
from mgtune.store import STATUSES, format_duration, select_best

__all__ = [
    "SELECTION_RULE", "NO_COMPARISON", "GAIN_NOTE", "TIME_NOTE", "STATUS_LABELS", "summary_line", "Choice", "Group",
    "Comparison", "Table", "group_studies", "compare", "best_table", "trials_table", "comparison_table",
    "studies_table", "to_markdown", "render_csv", "metric_keys", "abbrev", "plus_minus", "mean_sd", "signed",
]

SELECTION_RULE = (
    "The best configuration of a model and MG setting is its trial with the highest validation {metric} "
    "among trials with status `completed` (ran to max_epochs or stopped by its own early stopping). "
    "Trials stopped early by ASHA (`early_stopped`), and diverged or errored trials, count towards the "
    "trials and epochs spent but are never chosen: an ASHA-stopped trial was cut short before its best "
    "epoch could be judged. In a study its budget ended, where the trials still running were cut short by "
    "the budget (`budget_stopped`) rather than judged worse, every trial with metrics competes. Test metrics "
    "are those of the chosen trial at its best validation epoch; test never influences the choice. Several "
    "studies of the same model and MG setting are pooled."
)
TIME_NOTE = (
    "Wall time: a study's from start to end, as its budget record counted it (across --resume), else from "
    "its study.json's created to finished (which includes any pause before a --resume); a model's is its "
    "studies' added up. Trial-seconds: every trial's own training and evaluation time added up, so with "
    "several trials at a time they exceed the wall time."
)
STATUS_LABELS = {  # what each status of results.csv is called on a page
    "completed": "completed", "early_stopped": "stopped by ASHA", "budget_stopped": "cut by the budget",
    "diverged": "diverged", "errored": "errored",
}
assert tuple(STATUS_LABELS) == STATUSES
NO_COMPARISON = "No model has both an MG and a no-MG study with a completed trial on this dataset."
GAIN_NOTE = "Test metrics; Gain = (MG - no MG) / no MG."


def summary_line(metric: str, ks: Sequence[int]) -> str:
    return f"Selection metric: validation {metric}. Test metrics at cutoffs {', '.join(map(str, ks))}."


@dataclass(frozen=True, eq=False)
class Choice:
    """The trial chosen for a group."""

    study: Study
    trial_id: str
    trial_dir: str
    status: str  # completed, or (in a study its budget ended) stopped early
    best_epoch: int
    epochs_run: int
    valid: float  # validation value of the selection metric
    test: dict[str, float]  # keyed like ``recall@5``
    params: dict[str, float | str]


@dataclass(frozen=True, eq=False)
class Group:
    """All trials of one model and MG setting on one dataset, pooled over its studies.

    ``trials`` concatenates the studies' results.csv rows; column ``study`` indexes ``studies``.
    """

    dataset: str
    model: str
    mg: bool
    studies: tuple[Study, ...]
    trials: pd.DataFrame = field(repr=False)
    best: Choice | None  # None when no trial completed

    @property
    def label(self) -> str:
        return f"{self.model.upper()} + MG" if self.mg else self.model.upper()

    def count(self, status: str) -> int:
        return int((self.trials["status"] == status).sum())

    @property
    def budget_ended(self) -> bool:
        """A budget ended one of its studies: then a trial stopped early may be the best (`select_best`)."""
        return _budget_ended(self.studies)

    @property
    def epochs_spent(self) -> int:
        return int(self.trials["epochs_run"].sum())

    @property
    def trial_seconds(self) -> float:
        """Every trial's own seconds added up (more than the wall time when trials ran side by side)."""
        return sum(s.trial_seconds for s in self.studies)

    @property
    def wall_seconds(self) -> float | None:
        """The studies' wall times added up; None if any study's is unknown."""
        walls = [s.wall_seconds for s in self.studies]
        return None if any(w is None for w in walls) else sum(w for w in walls if w is not None)


@dataclass(frozen=True, eq=False)
class Comparison:
    """A model with both an MG and a no-MG best trial; ``gains`` is ``(mg - nomg) / nomg`` per test metric."""

    base: Group
    mg: Group
    gains: dict[str, float]


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    lists: tuple[int, ...] = ()
    """Columns whose cells are ``", "``-joined items (a configuration): HTML lets them wrap between items."""


def metric_keys(ks: Sequence[int]) -> list[str]:
    """Test metrics shown, grouped by cutoff as in the seed: REC, PREC, MAP, NDCG at each k."""
    return [f"{m}@{k}" for k in ks for m in METRIC_ABBREV]


def abbrev(key: str) -> str:
    name, _, k = key.partition("@")
    return f"{METRIC_ABBREV[name]}@{k}"


def group_studies(studies: Sequence[Study], metric: str, ks: Sequence[int]) -> list[Group]:
    """One `Group` per (model, MG setting), no-MG before MG, models in alphabetical order."""
    keys = sorted({(s.model.lower(), s.mg) for s in studies})
    return [_group([s for s in studies if (s.model.lower(), s.mg) == key], metric, ks) for key in keys]


def _group(studies: list[Study], metric: str, ks: Sequence[int]) -> Group:
    trials = pd.concat([s.trials.assign(study=i) for i, s in enumerate(studies)], ignore_index=True)
    best = None
    row = select_best(trials.to_dict("records"), metric, _budget_ended(studies))  # of equals, the earlier trial
    if row is not None:
        study = studies[int(row["study"])]
        best = Choice(
            study=study, trial_id=str(row["trial_id"]), trial_dir=str(row["trial_dir"]), status=str(row["status"]),
            best_epoch=int(row["best_epoch"]), epochs_run=int(row["epochs_run"]),
            valid=float(row[f"valid_{metric}"]),
            test={key: float(row[f"test_{key}"]) for key in metric_keys(ks)},
            params={p: _plain(row[f"param_{p}"]) for p in study.params if pd.notna(row[f"param_{p}"])},
        )
    first = studies[0]
    return Group(first.dataset, first.model.lower(), first.mg, tuple(studies), trials, best)


def _budget_ended(studies: Sequence[Study]) -> bool:
    return any(s.ended_by for s in studies)


def _plain(value: object) -> float | str:
    return value if isinstance(value, str) else float(value)  # type: ignore[arg-type]


def compare(groups: Sequence[Group]) -> list[Comparison]:
    """Pair each model's no-MG and MG groups where both have a chosen trial."""
    by_key = {(g.model, g.mg): g for g in groups}
    out = []
    for (model, mg), group in by_key.items():
        base = by_key.get((model, False))
        if not mg or base is None or base.best is None or group.best is None:
            continue
        gains = {key: _gain(group.best.test[key], base.best.test[key]) for key in group.best.test}
        out.append(Comparison(base, group, gains))
    return out


def _gain(mg: float, nomg: float) -> float:
    return (mg - nomg) / nomg if nomg != 0 else math.nan


def _num(value: float) -> str:
    return f"{value:.4f}"


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.2%}"


def _param(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return str(int(value)) if value.is_integer() and abs(value) < 1e6 else f"{value:.4g}"


def plus_minus(mean: float | None, sd: float | None, digits: int = 4, n: int | None = None) -> str:
    """``mean ± sd``: the mean alone without a finite sd, "—" without a finite mean; `` (n=N)`` if ``n`` is given."""
    if mean is None or not math.isfinite(mean):
        return "—"
    text = f"{mean:.{digits}f}"
    if sd is not None and math.isfinite(sd):
        text += f" ± {sd:.{digits}f}"
    return text if n is None else f"{text} (n={n})"


def mean_sd(stats: dict[str, Any], digits: int = 4) -> str:
    """A ``{n, mean, sd}`` record (a card's, a robustness table's) as ``mean ± sd (n=N)``."""
    return plus_minus(stats["mean"], stats["sd"], digits, n=stats["n"])


def signed(value: float | None) -> str:
    """A difference with its sign, "—" when there is none."""
    return "—" if value is None or not math.isfinite(value) else f"{value:+.4f}"


def _duration(seconds: float | None) -> str:
    """``1h02m``, ``4m05s``, ``12s`` (as progress lines show them); "—" when unknown."""
    return "—" if seconds is None else format_duration(seconds)


def best_table(groups: Sequence[Group], metric: str, ks: Sequence[int]) -> Table:
    """The chosen trial per model and MG setting; its status is named when it did not complete."""
    keys = metric_keys(ks)
    header = ["Model", "Best trial", "Best epoch", f"valid {metric}", *(abbrev(k) for k in keys), "Configuration"]
    rows = []
    for g in groups:
        if g.best is None:
            rows.append([g.label, "no completed trial", *["—"] * (len(keys) + 3)])
            continue
        trial = g.best.trial_id
        if g.best.status != "completed":  # a budget ended the study: a trial stopped early may be chosen
            trial += f" ({STATUS_LABELS[g.best.status]})"
        config = ", ".join(f"{p}={_param(v)}" for p, v in g.best.params.items()) or "—"
        rows.append([g.label, trial, str(g.best.best_epoch), _num(g.best.valid),
                     *(_num(g.best.test[k]) for k in keys), config])
    return Table(header, rows, lists=(len(header) - 1,))


def trials_table(groups: Sequence[Group]) -> Table:
    """What each model and MG setting spent: trials by status, epochs, wall time and trial-seconds."""
    statuses = [label[0].upper() + label[1:] for label in STATUS_LABELS.values()]
    header = ["Model", "Trials", *statuses, "Epochs", "Wall time", "Trial-seconds"]
    rows = [[g.label, str(len(g.trials)), *(str(g.count(s)) for s in STATUS_LABELS), str(g.epochs_spent),
             _duration(g.wall_seconds), _duration(g.trial_seconds)] for g in groups]
    return Table(header, rows)


def comparison_table(comparisons: Sequence[Comparison], ks: Sequence[int]) -> Table:
    """The seed's results table: ``Model`` and ``Model + MG`` rows (test metrics), then ``Gain``."""
    keys = metric_keys(ks)
    rows = []
    for c in comparisons:
        assert c.base.best is not None and c.mg.best is not None
        rows.append([c.base.label, *(_num(c.base.best.test[k]) for k in keys)])
        rows.append([c.mg.label, *(_num(c.mg.best.test[k]) for k in keys)])
        rows.append(["Gain", *(_pct(c.gains[k]) for k in keys)])
    return Table(["Model", *(abbrev(k) for k in keys)], rows)


def studies_table(groups: Sequence[Group]) -> Table:
    rows = []
    for g in groups:
        for s in g.studies:
            ended = f"{s.finished}, ended by its {s.ended_by} budget" if s.finished and s.ended_by else None
            rows.append([s.name, g.label, str(len(s.trials)), str(s.max_epochs), s.metric,
                         _duration(s.wall_seconds), _duration(s.trial_seconds),
                         ended or s.finished or "not finished"])
    return Table(["Study", "Model", "Trials", "Max epochs", "Optimised", "Wall time", "Trial-seconds", "Finished"],
                 rows)


def to_markdown(table: Table, bold_header: bool = False) -> str:
    header = [f"**{h}**" for h in table.header] if bold_header else table.header
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return "\n".join(lines)


def render_csv(groups: Sequence[Group], comparisons: Sequence[Comparison], metric: str,
               ks: Sequence[int]) -> str:
    """One row per group; MG rows of a compared model also carry ``gain_<metric>@<k>``."""
    keys = metric_keys(ks)
    gains = {id(c.mg): c.gains for c in comparisons}
    params = list(dict.fromkeys(p for g in groups for s in g.studies for p in s.params))
    records = []
    for g in groups:
        rec: dict[str, object] = {
            "dataset": g.dataset, "model": g.model, "mg": g.mg, "trials": len(g.trials),
            **{f"trials_{s}": g.count(s) for s in STATUSES},
            "epochs_spent": g.epochs_spent, "trial_seconds": round(g.trial_seconds, 3),
            "wall_seconds": None if g.wall_seconds is None else round(g.wall_seconds, 3),
        }
        b = g.best
        rec.update({"study": b.study.name if b else None, "trial_id": b.trial_id if b else None,
                    "trial_dir": b.trial_dir if b else None, "best_epoch": b.best_epoch if b else None,
                    "epochs_run": b.epochs_run if b else None, f"valid_{metric}": b.valid if b else None})
        rec.update({f"test_{k}": b.test[k] if b else None for k in keys})
        rec.update({f"param_{p}": b.params.get(p) if b else None for p in params})
        rec.update({f"gain_{k}": gains[id(g)][k] if id(g) in gains else None for k in keys})
        records.append(rec)
    buf = io.StringIO()
    # convert_dtypes keeps integer columns (flip_interval, best_epoch) integral next to empty cells
    pd.DataFrame.from_records(records).convert_dtypes().to_csv(buf, index=False)
    return buf.getvalue()
