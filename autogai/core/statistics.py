"""The statistics every score and comparison in autogai uses (rliable's practice, computed with SciPy).

Agarwal et al., "Deep RL at the Edge of the Statistical Precipice" (NeurIPS 2021): report the interquartile
mean (IQM: the mean of the middle 50% of runs, ``scipy.stats.trim_mean(x, 0.25)``) of independent runs with a
95% percentile bootstrap interval; compare two methods by the interval of the difference of their IQMs and by
the probability of improvement P(X > Y) (the Mann-Whitney statistic divided by n m) with its interval.

``scores`` arguments are 1-D: one score per independent run (e.g. a held-out seed's evaluation fitness).
Non-finite scores are dropped (a run that failed has no score; the caller counts it as a failure).
Intervals need at least two runs: with fewer, they are ``(nan, nan)``.

The percentile bootstrap of the IQM covers the true IQM close to the nominal 95% already at n = 10
(``tests/test_statistics.py`` checks it on simulated normal and log-normal runs).

A run that compares several designs with one baseline makes several tests at once: :func:`improvement_p_value`
is a one-sided permutation test of the IQM difference (the statistic the intervals bound), and
:func:`holm_adjust` applies Holm's step-down correction across the run's comparisons so that the chance of
declaring *any* false win stays below the level (Holm 1979, uniformly more powerful than Bonferroni).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 2000


def _finite(scores: Any) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    return values[np.isfinite(values)]


def _iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return stats.trim_mean(x, 0.25, axis=axis)


def iqm(scores: Any) -> float:
    """Interquartile mean of the finite scores (NaN without any)."""
    values = _finite(scores)
    return float(_iqm(values)) if values.size else math.nan


def iqm_interval(scores: Any, *, confidence: float = CONFIDENCE, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the IQM over runs (``(nan, nan)`` with fewer than 2 runs)."""
    values = _finite(scores)
    if values.size < 2:
        return (math.nan, math.nan)
    if np.ptp(values) == 0:
        return (float(values[0]), float(values[0]))
    result = stats.bootstrap(
        (values,),
        _iqm,
        n_resamples=RESAMPLES,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return (float(result.confidence_interval.low), float(result.confidence_interval.high))


def _difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return _iqm(x, axis=axis) - _iqm(y, axis=axis)


def _improvement(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """P(X > Y) + 0.5 P(X = Y) over all pairs of runs (the normalised Mann-Whitney U)."""
    a = np.moveaxis(np.asarray(x), axis, -1)[..., :, None]
    b = np.moveaxis(np.asarray(y), axis, -1)[..., None, :]
    return np.mean((a > b) + 0.5 * (a == b), axis=(-2, -1))


@dataclass(frozen=True)
class ScoreEstimate:
    """A method's score over independent runs: IQM with its 95% interval, plus the plain mean."""

    n: int
    iqm: float
    low: float
    high: float
    mean: float


def estimate(scores: Any, *, confidence: float = CONFIDENCE, seed: int = 0) -> ScoreEstimate:
    values = _finite(scores)
    low, high = iqm_interval(values, confidence=confidence, seed=seed)
    mean = float(values.mean()) if values.size else math.nan
    return ScoreEstimate(int(values.size), iqm(values), low, high, mean)


@dataclass(frozen=True)
class Comparison:
    """X against Y: the IQM difference with its interval, and P(X > Y) with its interval.

    ``better`` is true only when the difference interval lies entirely above 0.
    """

    difference: float
    difference_low: float
    difference_high: float
    probability_of_improvement: float
    probability_low: float
    probability_high: float

    @property
    def degenerate(self) -> bool:
        """The interval collapsed to a point (e.g. every run of both methods scored the same): it measures
        no uncertainty, so it can never decide a win."""
        return not (math.isfinite(self.difference_low) and math.isfinite(self.difference_high)) or (
            self.difference_high - self.difference_low <= 1e-12 * max(1.0, abs(self.difference))
        )

    @property
    def better(self) -> bool:
        return not self.degenerate and self.difference_low > 0.0

    @property
    def worse(self) -> bool:
        return not self.degenerate and self.difference_high < 0.0


def compare(x: Any, y: Any, *, confidence: float = CONFIDENCE, seed: int = 0) -> Comparison:
    """Compare independent runs ``x`` of one method with runs ``y`` of another (bootstrapped separately)."""
    a, b = _finite(x), _finite(y)
    nan = math.nan
    if a.size == 0 or b.size == 0:
        return Comparison(nan, nan, nan, nan, nan, nan)
    difference = float(_difference(a, b))
    improvement = float(_improvement(a, b))
    if a.size < 2 or b.size < 2:
        return Comparison(difference, nan, nan, improvement, nan, nan)
    intervals = []
    for statistic in (_difference, _improvement):
        result = stats.bootstrap(
            (a, b),
            statistic,
            n_resamples=RESAMPLES,
            confidence_level=confidence,
            method="percentile",
            vectorized=True,
            paired=False,
            rng=np.random.default_rng(seed),
        )
        low, high = result.confidence_interval.low, result.confidence_interval.high
        # A constant statistic (e.g. every x above every y) has a degenerate, NaN interval in SciPy.
        point = difference if statistic is _difference else improvement
        intervals.append(
            (point, point) if not (np.isfinite(low) and np.isfinite(high)) else (float(low), float(high))
        )
    (d_low, d_high), (p_low, p_high) = intervals
    return Comparison(difference, d_low, d_high, improvement, p_low, p_high)


PERMUTATIONS = 9999


def improvement_p_value(x: Any, y: Any, *, seed: int = 0) -> float:
    """One-sided p-value of "the IQM of ``x`` is higher than that of ``y``" (independent runs).

    A permutation test of the IQM difference (``scipy.stats.permutation_test``, exact when the number of
    distinct relabellings is at most :data:`PERMUTATIONS`). 1.0 when either side has fewer than two runs, and
    when the pooled runs are all equal (no relabelling can show a difference).
    """
    a, b = _finite(x), _finite(y)
    if a.size < 2 or b.size < 2:  # one run a side can show no difference beyond chance at any level
        return 1.0
    pooled = np.concatenate([a, b])
    if np.ptp(pooled) == 0:
        return 1.0
    result = stats.permutation_test(
        (a, b),
        _difference,
        permutation_type="independent",
        alternative="greater",
        n_resamples=PERMUTATIONS,
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    return float(result.pvalue)


def holm_adjust(p_values: Any) -> np.ndarray:
    """Holm's step-down adjusted p-values ``[m]`` for ``m`` simultaneous tests (same order as given).

    Sorted ascending, the i-th smallest p (0-based) is multiplied by ``m - i``, made monotone with a running
    maximum and capped at 1; rejecting where the adjusted p is below alpha controls the family-wise error
    rate at alpha.
    """
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted
