r"""`mgtune robustness`: does MG make a model hold up when its item features go bad?

For a study, the best MG configuration and its no-MG counterpart are taken from the study's
confirmation (`mgtune.study.confirm`; it is run first, ``--seeds N``, when the study has none):
every completed run's best weights (``confirm/trial_<id>/weights.pt``). Runs confirmed before
confirmations kept their weights are trained again in this process, with the run's own
configuration and seed (CPU training is deterministic), into ``robustness/weights/``.

Every trained model is then evaluated on the test split with its item features spoiled at test
time only (`mgtune.training.perturb`). Honest evaluation: the model is built afresh from the
spoiled `Dataset` (kNN item graphs, feature buffers and cached projections all come from the
spoiled features; the in-memory dataset has no fingerprint, so the on-disk cache neither serves
nor stores it), and only then are the trained weights loaded, except the parts the model declares
as built from features (`Recommender.feature_parts`, `Recommender.load_trained`). Nothing is
trained for this beyond those missing weights.

Output, ``<study>/robustness/``: ``results.csv`` (one row per model x arm x seed x kind x
modality x level, test metrics) and ``robustness.json`` (settings, seconds). Statistics
(`drop_table`): per kind and level, each run's relative drop :math:`1 - m_\ell / m_0` against its
own level 0, mean ± sd per arm, and the paired difference MG − no MG of the drop over seeds with
the t-interval of `mgtune.study.stats`. The verdict: "MG helps" when the whole interval lies
below zero (MG loses less), "MG hurts" when above, else no clear difference.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from mgtune.data import Dataset
from mgtune.errors import ConfigError, DataFormatError
from mgtune.files import write_json, write_text
from mgtune.study.confirmation import ARMS, CONFIRM_DIR, WEIGHTS_FILE, Confirmation, load_confirmation, read_study
from mgtune.study.record import RESULTS_FILE, ROBUST_DIR, STUDY_FILE, finite_number, now, read_record
from mgtune.study.stats import ArmStats, PairedTest, arm_stats, paired_t_test, verdict
from mgtune.training import (
    Evaluator,
    TrainConfig,
    build_model,
    load_checkpoint,
    load_data,
    metric_names,
    resolve_device,
    save_checkpoint,
    train,
)
from mgtune.training.perturb import KINDS, Perturbation, perturb

__all__ = [
    "ROBUST_DIR", "ROBUST_FILE", "LEVELS", "RobustnessSettings", "RobustnessOutcome", "TrainedRun", "DropRow",
    "study_dirs", "trained_runs", "evaluate_runs", "run_robustness", "load_robustness", "drop_table",
    "robustness_columns", "robustness_summary", "SHOWN", "CURVES_FILE",
]

ROBUST_FILE = "robustness.json"
WEIGHTS_DIR = "weights"
LEVELS = (0.0, 0.1, 0.25, 0.5, 1.0)
SHOWN = ("recall@20", "ndcg@20")  # the metrics of the curves, the table and the card
CURVES_FILE = "curves.png"  # drawn by `mgtune.report.robustness`
HEAD = ("study", "model", "dataset", "source_trial", "arm", "seed", "kind", "modality", "level", "mask_fill",
        "perturb_seed", "seconds")


@dataclass(frozen=True)
class RobustnessSettings:
    """The options of ``mgtune robustness`` (defaults as in the CLI); `ConfigError` for bad ones."""

    run_dir: str
    seeds: int = 3  # only when the study is not confirmed yet: the confirmation's seeds
    kinds: tuple[str, ...] = KINDS
    levels: tuple[float, ...] = LEVELS
    modality: str = "both"
    seed: int = 0  # of the perturbations
    mask_fill: str = "zero"
    device: str = "cpu"
    cpus_per_trial: float = 1.0  # for a confirmation run first
    address: str | None = None

    def __post_init__(self) -> None:
        if self.seeds < 2:
            raise ConfigError(f"--seeds must be >= 2 (a spread and a paired test need two seeds), got {self.seeds}")
        if not self.kinds:
            raise ConfigError("--kinds: give at least one of " + ", ".join(KINDS))
        if not self.levels:
            raise ConfigError("--levels: give at least one level")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"--device must be auto, cpu or cuda, got {self.device!r}")
        for kind in self.kinds:
            for level in self.levels:
                Perturbation(kind, level, self.modality, self.seed, self.mask_fill)  # raises on a bad one

    @property
    def all_levels(self) -> tuple[float, ...]:
        """The levels, sorted, with 0 (each run's own reference for the relative drop)."""
        return tuple(sorted({0.0, *self.levels}))

    def perturbations(self) -> list[Perturbation]:
        return [Perturbation(k, lv, self.modality, self.seed, self.mask_fill) for k in self.kinds
                for lv in self.all_levels]


@dataclass(frozen=True)
class TrainedRun:
    """One confirmation run's trained model: its configuration, arm, seed and best weights."""

    source_trial: str
    arm: str
    seed: int
    config: TrainConfig
    state: dict[str, torch.Tensor] = field(repr=False)
    recorded_test: dict[str, float] = field(default_factory=dict)  # the confirmation's test metrics


@dataclass
class RobustnessOutcome:
    studies: list[Path]
    results: list[Path]
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {"studies": [str(p) for p in self.studies], "results": [str(p) for p in self.results],
                "seconds": round(self.seconds, 1)}


# ---------------------------------------------------------------- which studies
def study_dirs(path: str | Path) -> list[Path]:
    """``path`` if it is a study folder; else its subfolders that are studies (a suite); else `ConfigError`.

    Of a folder of studies, `run_robustness` takes those that ran with MG (a --no-mg study has no MG
    configuration; its model's MG study holds both arms once confirmed)."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"{path}: no such study folder")
    if (folder / STUDY_FILE).is_file():
        return [folder.resolve()]
    subs = sorted(p.resolve() for p in folder.iterdir() if p.is_dir() and (p / STUDY_FILE).is_file())
    if not subs:
        raise ConfigError(f"{path}: not a study folder (no {STUDY_FILE}) nor a folder of study folders")
    return subs


# ---------------------------------------------------------------- the trained models
def trained_runs(conf: Confirmation, data: Dataset, log: Callable[[str], None]) -> list[TrainedRun]:
    """The completed runs of the confirmation's best configuration, with their best weights."""
    best = conf.candidates[0]
    study_dir = conf.study_dir
    _, meta, space = read_study(study_dir)
    out = []
    for row in conf.rows:
        if row["source_trial"] != best.trial_id or row["status"] != "completed":
            continue
        arm, seed = str(row["arm"]), int(row["seed"])
        recorded = {n: float(row[f"test_{n}"]) for n in metric_names(conf.topk) if row.get(f"test_{n}") is not None}
        weights = study_dir / CONFIRM_DIR / str(row["trial_dir"]) / WEIGHTS_FILE
        kept = study_dir / ROBUST_DIR / WEIGHTS_DIR / f"{best.trial_id}-{arm}-seed{seed}.pt"
        path = weights if weights.is_file() else kept
        if not path.is_file():
            log(f"{study_dir.name}: run {arm} seed {seed} kept no weights (confirmed before confirmations kept "
                "them); training it again with its own configuration and seed")
            setup = replace(meta.trial_setup(space, study_dir / CONFIRM_DIR), seed=seed, mg=arm == "mg",
                            gpus_per_trial=0.0)
            result = train(setup.train_config(best.params), data=data)
            save_checkpoint(kept, result.config, result.best_state, result.best_epoch)
        cfg, state = load_checkpoint(path)
        out.append(TrainedRun(best.trial_id, arm, seed, cfg, state, recorded))
    if not out:
        raise DataFormatError(f"{study_dir / CONFIRM_DIR}: no completed run of the best configuration")
    return sorted(out, key=lambda r: (r.seed, ARMS.index(r.arm)))


def evaluate_runs(data: Dataset, runs: Sequence[TrainedRun], perturbations: Sequence[Perturbation],
                  device: str = "cpu", log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Test metrics of every run under every perturbation: one row each (no study columns).

    Each model is built from the perturbed dataset and gets the run's weights except its feature
    parts (`Recommender.load_trained`); the evaluator needs only the interactions, which stay. One
    perturbed dataset exists at a time, shared by every run (the arms are compared on the same
    spoiled features); a model configuration's clean build is made once.
    """
    dev = resolve_device(device)
    evaluator = Evaluator(data, dev, runs[0].config.topk, runs[0].config.eval_batch_size)
    clean_builds: dict[str, dict[str, torch.Tensor]] = {}
    for run in runs:
        key = _build_key(run.config)
        if key not in clean_builds:
            clean = build_model(run.config, data, dev)
            clean_builds[key] = {k: v.detach().clone() for k, v in clean.state_dict().items()
                                 if clean.is_feature_part(k)}
    rows: list[tuple[tuple[int, int], dict[str, Any]]] = []  # (run, perturbation) order, row
    for order, p in enumerate(perturbations):
        pdata = perturb(data, p)
        for index, run in enumerate(runs):
            t0 = time.perf_counter()
            torch.manual_seed(run.config.seed)
            model = build_model(run.config, pdata, dev)
            model.load_trained(run.state, clean_builds[_build_key(run.config)])
            test = evaluator.evaluate(model, ("test",))["test"]
            row = {"source_trial": run.source_trial, "arm": run.arm, "seed": run.seed, "kind": p.kind,
                   "modality": p.modality, "level": p.level, "mask_fill": p.fill if p.kind == "mask" else "",
                   "perturb_seed": p.seed, "seconds": round(time.perf_counter() - t0, 4),
                   **{f"test_{k}": v for k, v in test.items()}}
            rows.append(((index, order), row))
            if p.level == 0 and run.recorded_test and log is not None:
                gap = max(abs(test[k] - v) for k, v in run.recorded_test.items() if k in test)
                if gap > 1e-6:
                    log(f"run {run.arm} seed {run.seed}: level 0 differs from the confirmation's test metrics by "
                        f"up to {gap:.2g}")
    return [row for _, row in sorted(rows, key=lambda r: r[0])]  # by run, then perturbation


def _build_key(cfg: TrainConfig) -> str:
    """What a model's build depends on besides the data: its name and hyperparameters."""
    return json.dumps([cfg.model, cfg.model_params], sort_keys=True, default=str)


# ---------------------------------------------------------------- the command
def run_robustness(s: RobustnessSettings, log: Callable[[str], None]) -> RobustnessOutcome:
    """`mgtune robustness` over ``s.run_dir`` (a study or a folder of studies). Confirms unconfirmed studies first."""
    started = time.perf_counter()
    dirs = study_dirs(s.run_dir)
    metas = {d: read_study(d)[1] for d in dirs}  # every argument problem before any work
    if len(dirs) > 1 or dirs[0] != Path(s.run_dir).expanduser().resolve():  # a folder of studies
        if not any(metas[d].mg for d in dirs):
            raise ConfigError(f"{s.run_dir}: none of its studies ran with MG; nothing to compare")
        for d in [d for d in dirs if not metas[d].mg]:
            log(f"{d.name}: skipped, a study without MG (no MG configuration to compare)")
        dirs = [d for d in dirs if metas[d].mg]
    resolve_device(s.device)  # cuda without one: an error now, not after a confirmation
    results = []
    for study_dir in dirs:
        meta = metas[study_dir]
        data = load_data(meta.train_config())
        perturbations = s.perturbations()
        perturb(data, perturbations[0])  # a --modality the data lacks: an error before any training
        conf = _confirmation(study_dir, s, log)
        runs = trained_runs(conf, data, log)
        t0 = time.perf_counter()  # the evaluations: what a pass over trained models costs
        log(f"{study_dir.name}: {len(runs)} trained model(s) x {len(perturbations)} perturbation(s) "
            f"({', '.join(s.kinds)} of {s.modality}, levels {', '.join(f'{lv:g}' for lv in s.all_levels)})")
        rows = [{"study": study_dir.name, "model": meta.model, "dataset": meta.dataset, **r}
                for r in evaluate_runs(data, runs, perturbations, s.device, log)]
        folder = study_dir / ROBUST_DIR
        path = folder / RESULTS_FILE
        _write_rows(path, rows, meta.topk)
        seconds = time.perf_counter() - t0
        write_json(folder / ROBUST_FILE, {
            "study": study_dir.name, "source_trial": runs[0].source_trial, "seeds": sorted({r.seed for r in runs}),
            "kinds": list(s.kinds), "levels": list(s.all_levels), "modality": s.modality, "mask_fill": s.mask_fill,
            "perturb_seed": s.seed, "device": s.device, "seconds": round(seconds, 1), "created": now(),
        })
        log(f"{study_dir.name}: wrote {path} ({len(rows)} rows, {seconds:.0f} s)")
        results.append(path)
    return RobustnessOutcome(dirs, results, time.perf_counter() - started)


def _confirmation(study_dir: Path, s: RobustnessSettings, log: Callable[[str], None]) -> Confirmation:
    conf = load_confirmation(study_dir)
    if conf is not None and conf.info.get("finished"):
        return conf
    from mgtune.study.confirm import ConfirmSettings, run_confirm

    log(f"{study_dir.name}: not confirmed yet; training the best configuration with MG and without over "
        f"{s.seeds} seeds first (mgtune confirm)")
    outcome = run_confirm(ConfirmSettings(str(study_dir), seeds=s.seeds, cpus_per_trial=s.cpus_per_trial,
                                          address=s.address), log=log)
    if not outcome.finished or outcome.confirmation is None:
        raise ConfigError(f"{study_dir}: the confirmation was interrupted; finish it with mgtune confirm "
                          f"{study_dir} --seeds {s.seeds} --resume, then run mgtune robustness again")
    return outcome.confirmation


# ---------------------------------------------------------------- results.csv
def robustness_columns(topk: Sequence[int]) -> list[str]:
    return [*HEAD, *(f"test_{n}" for n in metric_names(tuple(topk)))]


def _write_rows(path: Path, rows: Sequence[dict[str, Any]], topk: Sequence[int]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=robustness_columns(topk), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buf.getvalue())


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
