"""ASHA never stops a warm start early: the reference defaults must get their full run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("ray")


@dataclass(eq=False)
class _Trial:  # what the scheduler reads of a Ray trial: identity and config
    trial_id: str
    config: dict[str, Any] = field(default_factory=dict)


def _scheduler(starts: list[dict[str, Any]]) -> Any:
    from mgtune.study._ray_parts import StartsRunFullASHA

    return StartsRunFullASHA(time_attr="training_iteration", metric="score", mode="max", max_t=9, grace_period=1,
                             reduction_factor=2, starts=starts)


@pytest.mark.parametrize("is_start", [True, False])
def test_a_start_trailing_at_a_rung_goes_on_and_others_stop(is_start: bool) -> None:
    from ray.tune.schedulers import TrialScheduler

    slow = {"learning_rate": 1e-3, "reg_weight": 1.0}
    asha = _scheduler([slow] if is_start else [{"learning_rate": 5e-3, "reg_weight": 1.0}])
    fast, default = _Trial("fast", {"learning_rate": 9e-3, "reg_weight": 1.0}), _Trial("default", dict(slow))
    for t in (fast, default):
        asha.on_trial_add(None, t)
    assert asha.on_trial_result(None, fast, {"training_iteration": 1, "score": 0.5}) == TrialScheduler.CONTINUE
    action = asha.on_trial_result(None, default, {"training_iteration": 1, "score": 0.1})
    assert action == (TrialScheduler.CONTINUE if is_start else TrialScheduler.STOP)
