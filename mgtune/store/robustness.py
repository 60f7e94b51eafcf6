r"""A robustness pass's record: ``<study>/robustness/`` read and written, and its drop statistics.

``results.csv`` holds one row per trained run x perturbation (kind, modality, level) with the test
metrics; ``robustness.json`` the settings and seconds. Statistics (`drop_table`): per kind and level,
each run's relative drop :math:`1 - m_\ell / m_0` against its own level 0, mean ± sd per arm, and
the paired difference MG − no MG of the drop over seeds with the t-interval of `mgtune.store.stats`.
The verdict: "MG helps" when the whole interval lies below zero (MG loses less), "MG hurts" when
above, else no clear difference. `mgtune.study.robustness` runs the pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mgtune.store.confirmation import ARMS
from mgtune.store.csv_files import write_csv
from mgtune.store.fields import finite_number
from mgtune.store.json_files import read_record
from mgtune.store.layout import CURVES_FILE, RESULTS_FILE, ROBUST_DIR, ROBUST_FILE
from mgtune.store.metrics import metric_names
from mgtune.store.stats import ArmStats, PairedTest, arm_stats, paired_t_test, verdict

__all__ = [
    "KINDS", "SHOWN", "DropRow", "robustness_columns", "write_robustness_rows", "load_robustness", "drop_table",
    "robustness_summary",
]

KINDS = ("gaussian", "mask", "swap")  # the perturbations (`mgtune.training.perturb`), in the tables' order
SHOWN = ("recall@20", "ndcg@20")  # the metrics of the curves, the table and the card
HEAD = ("study", "model", "dataset", "source_trial", "arm", "seed", "kind", "modality", "level", "mask_fill",
        "perturb_seed", "seconds")


# ---------------------------------------------------------------- results.csv
def robustness_columns(topk: Sequence[int]) -> list[str]:
    return [*HEAD, *(f"test_{n}" for n in metric_names(tuple(topk)))]


def write_robustness_rows(path: Path, rows: Sequence[dict[str, Any]], topk: Sequence[int]) -> None:
    """``robustness/results.csv``, replaced atomically."""
    write_csv(path, robustness_columns(topk), rows)


def load_robustness(study_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """``<study>/robustness/``'s record and typed rows; None when the study has no robustness results."""
    folder = Path(study_dir) / ROBUST_DIR
    record = read_record(folder / ROBUST_FILE, folder / RESULTS_FILE)
    return None if record is None else (record[0], [_typed(r) for r in record[1]])


def _typed(row: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = dict(row)
    out["seed"] = int(row["seed"])
    out["level"] = float(row["level"])
    for key in row:
        if key.startswith("test_") or key == "seconds":
            out[key] = finite_number(row[key])
    return out


# ---------------------------------------------------------------- statistics
@dataclass(frozen=True)
class DropRow:
    """One kind and level of one metric: per arm the metric and its relative drop, and MG − no MG of the drop."""

    kind: str
    modality: str
    level: float
    metric: str
    value: dict[str, ArmStats]  # arm -> the metric at this level over seeds
    drop: dict[str, ArmStats]  # arm -> 1 - metric / the run's level-0 metric
    difference: PairedTest  # MG drop - no-MG drop, paired by seed

    @property
    def verdict(self) -> str:
        """"MG helps" when MG's drop is smaller over the whole interval (difference below zero)."""
        return verdict(-self.difference.ci_high, -self.difference.ci_low)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "modality": self.modality, "level": self.level, "metric": self.metric,
                "value": {a: s.as_dict() for a, s in self.value.items()},
                "drop": {a: s.as_dict() for a, s in self.drop.items()},
                "difference": {**self.difference.as_dict(), "verdict": self.verdict}}


def drop_table(rows: Sequence[dict[str, Any]], metric: str) -> list[DropRow]:
    """Relative drops and the paired MG − no MG test per (kind, modality, level), levels above 0."""
    key = f"test_{metric}"
    base = {(r["kind"], r["modality"], r["arm"], r["seed"]): r[key] for r in rows if r["level"] == 0}
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["kind"], r["modality"], r["level"]), []).append(r)
    out = []
    for (kind, modality, level), group in sorted(groups.items(), key=lambda g: (KINDS.index(g[0][0]), g[0][1:])):
        values: dict[str, dict[int, float]] = {a: {} for a in ARMS}
        drops: dict[str, dict[int, float]] = {a: {} for a in ARMS}
        for r in group:
            ref = base.get((kind, modality, r["arm"], r["seed"]))
            if r[key] is None:
                continue
            values[r["arm"]][r["seed"]] = r[key]
            if ref:
                drops[r["arm"]][r["seed"]] = 1.0 - r[key] / ref
        paired = sorted(set(drops["mg"]) & set(drops["nomg"]))
        out.append(DropRow(kind, modality, level, metric,
                           {a: arm_stats(list(values[a].values())) for a in ARMS},
                           {a: arm_stats(list(drops[a].values())) for a in ARMS},
                           paired_t_test([drops["mg"][s] for s in paired], [drops["nomg"][s] for s in paired])))
    return out


def robustness_summary(study_dir: str | Path, loaded: tuple[dict[str, Any], list[dict[str, Any]]] | None = None,
                       ) -> dict[str, Any] | None:
    """The robustness results as JSON-able data (settings, the drop table of `SHOWN`, levels above 0), or None.

    ``loaded``: `load_robustness`'s result, when the caller has read it already."""
    loaded = loaded if loaded is not None else load_robustness(study_dir)
    if loaded is None:
        return None
    info, rows = loaded
    shown = [m for m in SHOWN if rows and f"test_{m}" in rows[0]]
    return {**info, "evaluations": len(rows), "curves": str(Path(study_dir).resolve() / ROBUST_DIR / CURVES_FILE),
            "drops": [d.as_dict() for m in shown for d in drop_table(rows, m) if d.level > 0]}
