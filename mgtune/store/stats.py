r"""MG vs no-MG over seeds: mean ± sd per arm, and a paired t-test on the per-seed differences.

Both arms of a seed share the initialisation and the batch order (the seed drives both), so the
runs are compared in pairs: :math:`d_i = x^{MG}_i - x^{noMG}_i` for seed :math:`i`, and

.. math::
    \bar d \pm t_{1-\alpha/2,\,n-1}\, \frac{s_d}{\sqrt n}, \qquad
    t = \frac{\bar d}{s_d / \sqrt n}, \qquad p = 2\,P(T_{n-1} > |t|)

with :math:`s_d` the sample standard deviation (ddof = 1). This is the two-sided paired t-test
(``scipy.stats.ttest_rel``) and its t-interval (``scipy.stats.t.interval``). The verdict reads the
interval only: "MG helps" when it lies above zero, "MG hurts" when below, else no clear difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CONFIDENCE", "TEST_NAME", "MG_HELPS", "MG_HURTS", "NO_CLEAR", "VERDICTS", "ArmStats", "PairedTest",
    "arm_stats", "paired_t_test", "verdict",
]

CONFIDENCE = 0.95
TEST_NAME = "two-sided paired t-test over seeds, t distribution with n - 1 degrees of freedom"
MG_HELPS, MG_HURTS, NO_CLEAR = "MG helps", "MG hurts", "no clear difference"
VERDICTS = (MG_HELPS, MG_HURTS, NO_CLEAR)


def verdict(ci_low: float, ci_high: float) -> str:
    """"MG helps" only when the whole interval is above zero; an undefined interval decides nothing."""
    if ci_low > 0:
        return MG_HELPS
    if ci_high < 0:
        return MG_HURTS
    return NO_CLEAR  # also when the bounds are NaN (fewer than two pairs)


@dataclass(frozen=True)
class ArmStats:
    """One arm's values over seeds; ``sd`` uses ddof = 1 (NaN below two values)."""

    n: int
    mean: float
    sd: float

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": _json(self.mean), "sd": _json(self.sd)}


def arm_stats(values: Sequence[float]) -> ArmStats:
    n = len(values)
    mean = math.fsum(values) / n if n else math.nan
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return ArmStats(n, mean, sd)


@dataclass(frozen=True)
class PairedTest:
    """The paired differences MG − no MG: their mean, sd (ddof = 1), t-interval, t and p."""

    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    t: float
    p_value: float
    confidence: float = CONFIDENCE

    @property
    def verdict(self) -> str:
        return verdict(self.ci_low, self.ci_high)

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": _json(self.mean), "sd": _json(self.sd), "ci_low": _json(self.ci_low),
                "ci_high": _json(self.ci_high), "t": _json(self.t), "p_value": _json(self.p_value),
                "confidence": self.confidence, "test": TEST_NAME, "verdict": self.verdict}


def paired_t_test(mg: Sequence[float], nomg: Sequence[float], confidence: float = CONFIDENCE) -> PairedTest:
    """Paired t-test of ``mg[i] - nomg[i]`` (the same seed ``i``); needs two pairs for an interval.

    When every pair differs by exactly the same amount the t statistic is undefined (zero spread);
    the interval is then that single value, with p = 0 if it is not zero and p = 1 if it is.
    """
    if len(mg) != len(nomg):
        raise ValueError(f"paired samples need equal lengths, got {len(mg)} and {len(nomg)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    diffs = [a - b for a, b in zip(mg, nomg)]
    d = arm_stats(diffs)
    if d.n < 2:
        return PairedTest(d.n, d.mean, math.nan, math.nan, math.nan, math.nan, math.nan, confidence)
    se = d.sd / math.sqrt(d.n)
    if se == 0:
        t = math.nan if d.mean == 0 else math.copysign(math.inf, d.mean)
        return PairedTest(d.n, d.mean, d.sd, d.mean, d.mean, t, 1.0 if d.mean == 0 else 0.0, confidence)
    from scipy import stats

    q = float(stats.t.ppf(0.5 + confidence / 2, d.n - 1))
    t = d.mean / se
    p = float(2 * stats.t.sf(abs(t), d.n - 1))
    return PairedTest(d.n, d.mean, d.sd, d.mean - q * se, d.mean + q * se, t, p, confidence)


def _json(value: float) -> float | None:
    """NaN and infinities are not JSON: written as null."""
    return value if math.isfinite(value) else None
