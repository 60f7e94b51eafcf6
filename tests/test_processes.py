"""`mgtune.processes`: the trial niceness asked for (option, variable, default) and the CPUs a local runtime books."""

from __future__ import annotations

import os

import pytest

from mgtune.errors import ConfigError
from mgtune.processes import MAX_NICENESS, TRIAL_NICENESS_ENV, local_cpus, trial_niceness
from mgtune.study import StudySettings


def test_trial_niceness_defaults_to_the_commands_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TRIAL_NICENESS_ENV, raising=False)
    assert trial_niceness() == os.nice(0)
    monkeypatch.setenv(TRIAL_NICENESS_ENV, str(MAX_NICENESS))
    assert trial_niceness() == MAX_NICENESS
    assert trial_niceness(os.nice(0)) == os.nice(0)  # the option wins over the variable


@pytest.mark.parametrize(("given", "env", "message"), [
    (None, "high", "$MGTUNE_TRIAL_NICENESS: expected a whole number"),
    (MAX_NICENESS + 1, "", "--trial-niceness must be"),
    (-21, "", "--trial-niceness"),
])
def test_a_bad_trial_niceness_is_one_line(monkeypatch: pytest.MonkeyPatch, given: int | None, env: str,
                                          message: str) -> None:
    monkeypatch.setenv(TRIAL_NICENESS_ENV, env)
    with pytest.raises(ConfigError, match=message.replace("$", r"\$")):
        trial_niceness(given)


def test_a_trial_cannot_run_above_the_commands_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "nice", lambda inc: 5)
    with pytest.raises(ConfigError, match="below this command's own niceness"):
        trial_niceness(4)
    with pytest.raises(ConfigError, match="--trial-niceness"):  # checked with the study's settings, before Ray
        StudySettings(model="freedom", dataset="demo", trial_niceness=4)


def test_a_local_runtime_books_the_cpus_of_the_trials_at_once_never_more_than_the_machine() -> None:
    assert local_cpus(1.0, 2, detected=16) == 2
    assert local_cpus(0.5, 3, detected=16) == 2
    assert local_cpus(2.0, 32, detected=16) == 16
    assert local_cpus(32.0, 1, detected=16) == 16  # still refused by the resources check, with the machine's count
