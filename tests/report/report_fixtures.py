"""Fixture-writer for study folders in the format of the study contract (as `mgtune run` writes them).

`write_study` lays out study.json, results.csv, a progress.csv and params.json per trial, and a
real Optuna SQLite study holding the same trials, so reports can be tested without Ray.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

METRICS = ("recall", "precision", "map", "ndcg")
KS = (5, 10, 20, 50)
_STATE = {"completed": "COMPLETE", "early_stopped": "PRUNED", "budget_stopped": "PRUNED", "diverged": "FAIL",
          "errored": "FAIL"}
_STOPPED_EPOCHS = {"completed": 6, "early_stopped": 2, "budget_stopped": 3}  # else 1 (failed trials)


@dataclass
class FakeTrial:
    """One trial; ``valid``/``test`` are the recall@20 values, other metrics derive from them."""

    trial_id: str
    status: str = "completed"
    valid: float = 0.1
    test: float = 0.1
    params: dict[str, float | int] = field(default_factory=dict)
    epochs_run: int = 6
    best_epoch: int = 4

    def metrics(self, split: str) -> dict[str, float]:
        """Distinct, trial-specific values for every metric and cutoff (recall@20 is the given one)."""
        base = self.valid if split == "valid" else self.test
        skew = 1 + (sum(map(ord, self.trial_id)) % 7) / 20  # so that gains differ between metrics
        out = {}
        for i, m in enumerate(METRICS):
            for j, k in enumerate(KS):
                factor = (0.3 + 0.1 * i + 0.05 * j) * skew ** (i - j)
                out[f"{m}@{k}"] = base if (m, k) == ("recall", 20) else round(base * factor, 6)
        return out


def mg_trials(scores: list[tuple[str, str, float, float]]) -> list[FakeTrial]:
    """``(id, status, valid, test)`` tuples -> trials with varied MG parameters."""
    return [
        FakeTrial(tid, status, valid, test,
                  {"flip_interval": 1 + i % 5, "flip_ratio": round(0.05 + 0.07 * i, 3),
                   "learning_rate": 10 ** (-4 + 0.4 * i), "dropout": [0.8, 0.9][i % 2]},
                  epochs_run=_STOPPED_EPOCHS.get(status, 1))
        for i, (tid, status, valid, test) in enumerate(scores)
    ]


def nomg_trials(scores: list[tuple[str, str, float, float]]) -> list[FakeTrial]:
    trials = mg_trials(scores)
    for t in trials:
        t.params = {k: v for k, v in t.params.items() if k not in ("flip_interval", "flip_ratio")}
    return trials


def write_study(root: Path, name: str, trials: list[FakeTrial], model: str = "freedom",
                dataset: str = "toy", mg: bool = True, max_epochs: int = 6, **meta: object) -> Path:
    """``meta``: more keys of study.json (``ended_by``, ``budget_epochs``...)."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = root / name
    folder.mkdir(parents=True)
    space = {
        "flip_interval": IntDistribution(1, 10), "flip_ratio": FloatDistribution(0.05, 0.5),
        "learning_rate": FloatDistribution(1e-4, 1e-2, log=True), "dropout": CategoricalDistribution([0.8, 0.9]),
        # more of FREEDOM's, for configurations as long as real ones
        "reg_weight": CategoricalDistribution([0.0, 1e-5, 1e-4, 1e-3]), "mm_image_weight": FloatDistribution(0, 1),
        "knn_k": IntDistribution(5, 20), "n_mm_layers": IntDistribution(1, 3), "n_ui_layers": IntDistribution(1, 3),
    }
    params = list(dict.fromkeys(p for t in trials for p in t.params))
    (folder / "study.json").write_text(json.dumps({
        "model": model, "dataset": dataset, "mg": mg, "metric": "recall@20", "mode": "max",
        "max_epochs": max_epochs, "grace_epochs": 1, "reduction_factor": 3, "trials": len(trials), "seed": 0,
        "search_space": {p: {"type": "float"} for p in params}, "search_space_file": "x.yaml",
        "created": "2026-01-01T00:00:00", "finished": "2026-01-01T01:00:00", "mgtune_version": "0.1.0", **meta,
    }))
    metric_cols = [f"{split}_{m}@{k}" for split in ("valid", "test") for m in METRICS for k in KS]
    header = ["trial_id", "trial_dir", "status", "epochs_run", "best_epoch", "seconds",
              *(f"param_{p}" for p in params), *metric_cols]
    lines = [",".join(header)]
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder / 'optuna.db'}")
    study = optuna.create_study(storage=storage, study_name="mgtune", direction="maximize")
    for t in trials:
        tdir = f"trial_{t.trial_id}"
        finished = t.status in _STOPPED_EPOCHS
        valid, test = t.metrics("valid"), t.metrics("test")
        row = [t.trial_id, tdir, t.status, str(t.epochs_run), str(t.best_epoch) if finished else "",
               f"{3.5 * t.epochs_run:.2f}", *(str(t.params.get(p, "")) for p in params),
               *((str(valid[c[6:]]) if finished else "") for c in metric_cols[:16]),
               *((str(test[c[5:]]) if finished else "") for c in metric_cols[16:])]
        lines.append(",".join(row))
        (folder / tdir).mkdir()
        (folder / tdir / "params.json").write_text(json.dumps(t.params))
        if finished:
            _write_progress(folder / tdir / "progress.csv", t)
        study.add_trial(optuna.trial.create_trial(
            params=t.params, distributions={p: space[p] for p in t.params},
            value=t.valid if t.status == "completed" else None,
            state=getattr(optuna.trial.TrialState, _STATE[t.status]),
        ))
    storage.engine.dispose()
    (folder / "results.csv").write_text("\n".join(lines) + "\n")
    return folder


def _write_progress(path: Path, t: FakeTrial) -> None:
    """Validation rises to its best at ``best_epoch`` (the trial's value) and then drifts down."""
    cols = [f"{split}_{m}@{k}" for split in ("valid", "test") for m in METRICS for k in KS]
    lines = [",".join(["epoch", "train_loss", "lr", *cols, "training_iteration"])]
    for epoch in range(t.epochs_run):
        shape = 1.0 - 0.1 * abs(epoch - t.best_epoch)
        values = {**{f"valid_{k}": v * shape for k, v in t.metrics("valid").items()},
                  **{f"test_{k}": v * shape for k, v in t.metrics("test").items()}}
        lines.append(",".join([str(epoch), f"{1.0 / (epoch + 1):.4f}", "0.001",
                               *(f"{values[c]:.6f}" for c in cols), str(epoch + 1)]))
    path.write_text("\n".join(lines) + "\n")
