"""The settings of ``mgtune run``, ``confirm`` and ``robustness``: one frozen dataclass per command.

Each field holds its default and its command-line help (`mgtune.options.option`); ``__post_init__``
holds every check, so a bad value is one `ConfigError` whether it came from the command line, a
suite, a benchmark or a test, and it comes before Ray starts or a folder is made. What needs the
disk (the search space file, the study folder) is checked by the command itself.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mgtune.checks import MAX_SEED, check_float, check_int, check_name, check_writable_dir
from mgtune.errors import ConfigError
from mgtune.models import get_model, load_model_module, parse_models
from mgtune.models.model_files import model_module_option
from mgtune.options import option, parse_floats, parse_list
from mgtune.processes import TRIAL_NICENESS_ENV, trial_niceness
from mgtune.store import Budget, parse_duration
from mgtune.training import TrainConfig
from mgtune.training.perturb import KINDS, Perturbation

__all__ = [
    "MG_CHOICES", "DEFAULT_TRIALS", "BUDGETED_TRIALS", "DEFAULT_GRACE_EPOCHS", "MAX_RUNS", "StudySettings",
    "ConfirmSettings", "RobustnessSettings", "parse_mg",
]

MG_CHOICES = ("on", "off", "both")
DEFAULT_TRIALS = 32
BUDGETED_TRIALS = 100_000  # a budgeted study without --trials: the budget, not a count, ends it
DEFAULT_GRACE_EPOCHS = 10
MAX_RUNS = 10_000  # seeds, top configurations, confirmations: runs are listed up front, a billion would not fit
LEVELS = (0.0, 0.1, 0.25, 0.5, 1.0)

_CPUS = "CPUs each trial holds"
_GPUS = "GPUs each trial holds, fractions allowed"
_GPU_DEFAULT = "0.25 if the cluster has GPUs, else 0"
_ADDRESS = "attach to a running Ray cluster (auto or HOST:PORT)"


def parse_mg(mg: str | bool | None, no_mg: bool) -> str:
    """``--mg on|off|both`` (default on; True and False read as on and off) with ``--no-mg`` as the alias
    of ``--mg off``."""
    if isinstance(mg, bool):
        mg = "on" if mg else "off"
    if mg is not None and mg not in MG_CHOICES:
        raise ConfigError(f"--mg must be one of {', '.join(MG_CHOICES)}, got {mg!r}")
    if no_mg and mg not in (None, "off"):
        raise ConfigError(f"--no-mg contradicts --mg {mg} (--no-mg is --mg off)")
    return "off" if no_mg else mg or "on"


def _check_resources(cpus: float, gpus: float | None) -> None:
    check_float("--cpus-per-trial", cpus, low=0, low_open=True)
    if gpus is not None:
        check_float("--gpus-per-trial", gpus, low=0)


@dataclass(frozen=True)
class StudySettings:
    """``mgtune run``: one study, or with several models or ``mg="both"`` a suite of them (`mgtune.study.suite`).

    ``mg`` is normalised to "on", "off" or "both" (True and False are accepted as on and off)."""

    model: str | None = option(None, help="model name, e.g. freedom; several, comma-separated, or 'all': one study "
                               "each, at the same time (a suite)", default_text="required; with --resume the study's")
    dataset: str | None = option(None, help="dataset folder name under --data-dir ('demo' is built in)",
                                 default_text="required; with --resume the study's")
    data_dir: str = option("datasets", help="the folder of dataset folders")
    trials: int | None = option(None, help="trials to run", default_text=f"{DEFAULT_TRIALS}; with a budget, as many "
                                "as it allows")
    max_epochs: int = option(100, help="ASHA's max_t; also each trial's epoch limit")
    grace_epochs: int | None = option(None, help="ASHA: epochs before a trial can be stopped",
                                      default_text=f"{DEFAULT_GRACE_EPOCHS}, or --max-epochs if fewer")
    reduction_factor: int = option(3, help="ASHA's reduction factor")
    metric: str = option("recall@20", help="validation metric that search and ASHA maximise")
    cpus_per_trial: float = option(1.0, help=_CPUS)
    gpus_per_trial: float | None = option(None, help=_GPUS, default_text=_GPU_DEFAULT)
    concurrency: int | None = option(None, help="trials at a time; a suite shares them evenly among its studies",
                                     default_text="as many as the resources hold")
    address: str | None = option(None, help=_ADDRESS, default_text="$RAY_ADDRESS, else a local Ray started for "
                                 "the study")
    trial_niceness: int | None = option(None, metavar="N", default_text="this command's niceness; "
                                        f"${TRIAL_NICENESS_ENV}", help="niceness (0-19, higher yields the CPU) "
                                        "of the trials of a local Ray runtime; an attached cluster keeps its own")
    storage: str = option("runs", help="folder of study folders (shared by all nodes of a cluster)")
    name: str | None = option(None, help="study folder name; a suite's holds one folder per study, MODEL[-nomg]",
                              default_text="MODEL-DATASET[-nomg]-TIMESTAMP; a suite's suite-DATASET-TIMESTAMP")
    mg: str | bool | None = option(None, metavar="on|off|both", default_text="on", help="with Mirror Gradient "
                                   "(on), without (off), or one study of each (both: a suite)")
    no_mg: bool = option(False, const=True, help="--mg off: train without Mirror Gradient; MG settings not searched")
    seed: int = option(0, help="seed of the TPE sampler and of every trial")
    search_space: str | None = option(None, help="search-space YAML", default_text="search_spaces/MODEL.yaml")
    resume: bool = option(False, const=True, help="continue the interrupted study (or suite) --name")
    checkpoint_every: int = option(5, help="epochs between trial checkpoints")
    budget_epochs: int | None = option(None, metavar="N", default_text="none", help="end the study once its trials "
                                       "have trained N epochs in all (kept by --resume)")
    time_budget_s: float | None = option(None, flag="--time-budget", metavar="DURATION", parse=parse_duration,
                                         default_text="none", help="end the study after this much wall time, e.g. "
                                         "90m, 2h, 1h30m (kept by --resume)")
    confirm: int | None = option(None, metavar="N", default_text="none", help="afterwards, confirm the best "
                                 "configuration over N seeds, MG vs no MG (as mgtune confirm --seeds N)")
    model_module: str | None = model_module_option()  # study.json keeps it; every trial imports it

    def __post_init__(self) -> None:
        load_model_module(self.model_module)  # before the model names are checked
        object.__setattr__(self, "mg", parse_mg(self.mg, self.no_mg))
        object.__setattr__(self, "no_mg", self.mg == "off")
        _check_resources(self.cpus_per_trial, self.gpus_per_trial)
        check_int("--seed", self.seed, low=0, high=MAX_SEED)
        trial_niceness(self.trial_niceness)  # a bad value (or $MGTUNE_TRIAL_NICENESS) fails before Ray starts
        if self.confirm is not None:
            check_int("--confirm", self.confirm, high=MAX_RUNS)
            self.confirm_settings("")  # a bad --confirm fails before the study
        if not self.resume and (not self.model or not self.dataset):
            raise ConfigError("--model and --dataset are required (unless --resume)")
        if self.dataset is not None:
            check_name("dataset name", self.dataset)  # before the study's folder name is made from it
        for model in self.models:
            get_model(model)
        Budget(self.budget_epochs, self.time_budget_s)  # a one-line error for a bad budget
        checks = [
            (self.total_trials >= 1, f"--trials must be >= 1, got {self.trials}"),
            (self.max_epochs >= 1, f"--max-epochs must be >= 1, got {self.max_epochs}"),
            (1 <= self.grace <= self.max_epochs,
             f"--grace-epochs must be between 1 and --max-epochs ({self.max_epochs}), got {self.grace_epochs}"),
            (self.reduction_factor >= 2, f"--reduction-factor must be >= 2, got {self.reduction_factor}"),
            (self.gpus_per_trial is None or self.gpus_per_trial <= 1 or float(self.gpus_per_trial).is_integer(),
             f"--gpus-per-trial above 1 must be a whole number, got {self.gpus_per_trial}"),
            (self.concurrency is None or self.concurrency >= 1, f"--concurrency must be >= 1, got {self.concurrency}"),
            (self.checkpoint_every >= 1, f"--checkpoint-every must be >= 1, got {self.checkpoint_every}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        if self.models:
            TrainConfig(model=self.models[0], dataset="d", valid_metric=self.metric)  # validates the metric name

    @property
    def models(self) -> list[str]:
        """The models named (several for a suite); [] when none is (a resume reads them from the folder)."""
        return parse_models(self.model) if self.model else []

    @property
    def named_a_suite(self) -> bool:
        """Several models, ``all`` or ``mg="both"``: a suite, whatever is on disk (a resumed suite folder is one
        too: `mgtune.study.suite.is_suite_run`)."""
        model = (self.model or "").strip().lower()
        return "," in model or model == "all" or self.mg == "both"

    @property
    def total_trials(self) -> int:
        if self.trials is not None:
            return self.trials
        budgeted = self.budget_epochs is not None or self.time_budget_s is not None
        return BUDGETED_TRIALS if budgeted else DEFAULT_TRIALS

    @property
    def grace(self) -> int:
        """The explicit ``--grace-epochs``, else 10 capped at ``--max-epochs`` (so a short study needs no flag)."""
        return self.grace_epochs if self.grace_epochs is not None else min(DEFAULT_GRACE_EPOCHS, self.max_epochs)

    def confirm_settings(self, study_dir: str) -> ConfirmSettings:
        """The confirmation ``--confirm N`` asks for, of the study ``study_dir``."""
        assert self.confirm is not None
        return ConfirmSettings(study_dir=study_dir, seeds=self.confirm, cpus_per_trial=self.cpus_per_trial,
                               gpus_per_trial=self.gpus_per_trial, address=self.address)

    def replace(self, **changes: Any) -> StudySettings:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ConfirmSettings:
    """``mgtune confirm``: a study's best configurations re-trained over seeds, MG vs no MG."""

    study_dir: str = option(flag="", metavar="RUN_DIR", help="the study folder")
    seeds: int = option(5, help="seeds per configuration and arm: study seed + 0..N-1")
    top: int = option(1, help="how many of the best completed trials (by validation)")
    cpus_per_trial: float = option(1.0, help=_CPUS)
    gpus_per_trial: float | None = option(None, help=_GPUS, default_text=_GPU_DEFAULT)
    address: str | None = option(None, help=_ADDRESS, default_text="$RAY_ADDRESS, else a local Ray")
    resume: bool = option(False, const=True, help="continue interrupted runs from their checkpoints")
    out: str = option("reports", help="writes <out>/<model>-<dataset>-card.md and .json")

    def __post_init__(self) -> None:
        check_writable_dir("--out", self.out)
        _check_resources(self.cpus_per_trial, self.gpus_per_trial)
        check_int("--seeds", self.seeds, high=MAX_RUNS)
        check_int("--top", self.top, high=MAX_RUNS)
        if self.seeds < 2:
            raise ConfigError(f"--seeds must be >= 2 (a spread and a paired test need two seeds), got {self.seeds}")
        if self.top < 1:
            raise ConfigError(f"--top must be >= 1, got {self.top}")


@dataclass(frozen=True)
class RobustnessSettings:
    """``mgtune robustness``: the confirmed MG and no-MG models evaluated on spoiled item features."""

    run_dir: str = option(flag="", metavar="RUN_DIR", help="a study folder, or a folder of study folders")
    seeds: int = option(3, help="seeds per arm when the study is not confirmed yet")
    kinds: tuple[str, ...] = option(KINDS, parse=lambda text: parse_list(text, "--kinds"),
                                    default_text=",".join(KINDS), help="comma-separated: gaussian, mask, swap")
    levels: tuple[float, ...] = option(LEVELS, parse=lambda text: parse_floats(text, "--levels"),
                                       default_text="0,0.1,0.25,0.5,1.0",
                                       help="gaussian: noise in feature standard deviations; mask, swap: item share")
    modality: str = option("both", help="image, text or both")
    seed: int = option(0, help="seed of the perturbations (shared by every model)")
    mask_fill: str = option("zero", help="what a masked feature row becomes: zero or mean")
    device: str = option("cpu", help="where evaluations run: cpu, cuda or auto")
    cpus_per_trial: float = option(1.0, help="for the confirmation, if one runs first")
    address: str | None = option(None, help="Ray cluster for the confirmation, if one runs first",
                                 default_text="$RAY_ADDRESS, else a local Ray")
    out: str = option("reports", help="rewrites <out>/<model>-<dataset>-card.md and .json with the robustness "
                      "figures")

    def __post_init__(self) -> None:
        check_int("--seeds", self.seeds, high=MAX_RUNS)
        check_int("--seed", self.seed, low=0, high=MAX_SEED)
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
