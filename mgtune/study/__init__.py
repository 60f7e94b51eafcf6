"""Study layer: Ray Tune runs of the shared training function (every file they leave is `mgtune.store`'s).

Modules, by job: `settings` (the settings of ``run``, ``confirm`` and ``robustness``), `search_space`,
`trainable` (one trial, on a Ray worker), `session` (the Ray runtime: start or attach, resources),
`_ray_parts` (the Tune hooks: searcher, scheduler, stopper, callbacks), and the drivers `runner`
(`run_study`), `confirm` (`run_confirm`), `robustness` (`run_robustness`) and `suite` (several
studies at once on one Ray runtime, ``mgtune run --model a,b --mg both``).

Importing it imports none of them: the names below load their module on first use, so that
``import mgtune.study`` stays free of Ray and Optuna.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mgtune.study.runner import StudyOutcome, default_name, run_study
    from mgtune.study.search_space import (
        MG_PARAMS,
        TRAIN_PARAMS,
        Param,
        SearchSpace,
        find_search_space,
        load_search_space,
        space_from_dict,
    )
    from mgtune.study.settings import ConfirmSettings, RobustnessSettings, StudySettings
    from mgtune.study.trainable import TrialSetup, run_trial

__all__ = [
    "StudyOutcome", "default_name", "run_study", "ConfirmSettings", "RobustnessSettings", "StudySettings",
    "MG_PARAMS", "TRAIN_PARAMS", "Param", "SearchSpace", "find_search_space", "load_search_space", "space_from_dict",
    "TrialSetup", "run_trial",
]
_MODULE_OF = {  # each name's module, for __getattr__
    **dict.fromkeys(["StudyOutcome", "default_name", "run_study"], "runner"),
    **dict.fromkeys(["ConfirmSettings", "RobustnessSettings", "StudySettings"], "settings"),
    **dict.fromkeys(["MG_PARAMS", "TRAIN_PARAMS", "Param", "SearchSpace", "find_search_space", "load_search_space",
                     "space_from_dict"], "search_space"),
    **dict.fromkeys(["TrialSetup", "run_trial"], "trainable"),
}
assert sorted(_MODULE_OF) == sorted(__all__)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
