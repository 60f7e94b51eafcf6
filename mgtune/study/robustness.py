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
modality x level, test metrics) and ``robustness.json`` (settings, seconds); the record and its
statistics are `mgtune.store.robustness`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mgtune.data import Dataset
from mgtune.errors import ConfigError, DataFormatError
from mgtune.files import write_json
from mgtune.store import (
    CONFIRM_DIR,
    RESULTS_FILE,
    ROBUST_DIR,
    ROBUST_FILE,
    ROBUST_WEIGHTS_DIR,
    WEIGHTS_FILE,
    now,
)
from mgtune.store.confirmation import ARMS, Confirmation, load_confirmation, read_study
from mgtune.store.folders import study_folders
from mgtune.store.robustness import write_robustness_rows
from mgtune.study.confirm import run_confirm
from mgtune.study.search_space import recorded_space
from mgtune.study.settings import ConfirmSettings, RobustnessSettings
from mgtune.study.trainable import TrialSetup, study_data
from mgtune.training import (
    load_checkpoint,
    metric_names,
    resolve_device,
    save_checkpoint,
    train,
)
from mgtune.training.perturb import perturb
from mgtune.training.robust_eval import TrainedRun, evaluate_runs

__all__ = ["RobustnessSettings", "RobustnessOutcome", "trained_runs", "run_robustness"]


@dataclass
class RobustnessOutcome:
    studies: list[Path]
    results: list[Path]
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {"studies": [str(p) for p in self.studies], "results": [str(p) for p in self.results],
                "seconds": round(self.seconds, 1)}


# ---------------------------------------------------------------- the trained models
def trained_runs(conf: Confirmation, data: Dataset, log: Callable[[str], None]) -> list[TrainedRun]:
    """The completed runs of the confirmation's best configuration, with their best weights."""
    best = conf.candidates[0]
    study_dir = conf.study_dir
    _, meta = read_study(study_dir)
    space = recorded_space(meta, study_dir)
    out = []
    for row in conf.rows:
        if row["source_trial"] != best.trial_id or row["status"] != "completed":
            continue
        arm, seed = str(row["arm"]), int(row["seed"])
        recorded = {n: float(row[f"test_{n}"]) for n in metric_names(conf.topk) if row.get(f"test_{n}") is not None}
        weights = study_dir / CONFIRM_DIR / str(row["trial_dir"]) / WEIGHTS_FILE
        kept = study_dir / ROBUST_DIR / ROBUST_WEIGHTS_DIR / f"{best.trial_id}-{arm}-seed{seed}.pt"
        path = weights if weights.is_file() else kept
        if not path.is_file():
            log(f"{study_dir.name}: run {arm} seed {seed} kept no weights (confirmed before confirmations kept "
                "them); training it again with its own configuration and seed")
            setup = replace(TrialSetup.from_record(meta, space, study_dir / CONFIRM_DIR), seed=seed, mg=arm == "mg",
                            gpus_per_trial=0.0)
            result = train(setup.train_config(best.params), data=data)
            save_checkpoint(kept, result.config, result.best_state, result.best_epoch)
        cfg, state = load_checkpoint(path)
        out.append(TrainedRun(best.trial_id, arm, seed, cfg, state, recorded))
    if not out:
        raise DataFormatError(f"{study_dir / CONFIRM_DIR}: no completed run of the best configuration")
    return sorted(out, key=lambda r: (r.seed, ARMS.index(r.arm)))


# ---------------------------------------------------------------- the command
def run_robustness(s: RobustnessSettings, log: Callable[[str], None]) -> RobustnessOutcome:
    """`mgtune robustness` over ``s.run_dir`` (a study or a folder of studies). Confirms unconfirmed studies first."""
    started = time.perf_counter()
    dirs = study_folders(s.run_dir)
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
        data = study_data(meta)
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
        write_robustness_rows(path, rows, meta.topk)
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
    log(f"{study_dir.name}: not confirmed yet; training the best configuration with MG and without over "
        f"{s.seeds} seeds first (mgtune confirm)")
    outcome = run_confirm(ConfirmSettings(str(study_dir), seeds=s.seeds, cpus_per_trial=s.cpus_per_trial,
                                          address=s.address), log=log)
    if not outcome.finished or outcome.confirmation is None:
        raise ConfigError(f"{study_dir}: the confirmation was interrupted; finish it with mgtune confirm "
                          f"{study_dir} --seeds {s.seeds} --resume, then run mgtune robustness again")
    return outcome.confirmation
