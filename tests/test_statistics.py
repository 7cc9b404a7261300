"""IQM, its percentile-bootstrap interval, and the comparison of two methods (autogai.core.statistics)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from autogai.core.statistics import compare, estimate, iqm, iqm_interval


def _lognormal_iqm(sigma: float = 1.0) -> float:
    """The population IQM of LogNormal(0, sigma): E[X | q25 < X < q75], in closed form."""
    z25, z75 = stats.norm.ppf(0.25), stats.norm.ppf(0.75)
    s2 = sigma * sigma
    inner = stats.norm.cdf(z75 - sigma) - stats.norm.cdf(z25 - sigma)  # (ln q - s^2) / s with ln q = z s
    return float(math.exp(s2 / 2) * inner / 0.5)


def test_iqm_by_hand_and_non_finite_scores_are_dropped() -> None:
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert iqm([8, 1, 7, 2, 6, 3, 5, 4, math.nan, math.inf]) == pytest.approx(4.5)
    assert iqm([100.0, 0.0, 1.0, 2.0]) == pytest.approx(1.5)  # the outliers do not move it
    assert math.isnan(iqm([math.nan]))
    score = estimate([1.0, 2.0, math.nan])
    assert score.n == 2 and score.mean == pytest.approx(1.5)


def test_intervals_need_two_runs_and_constant_runs_have_a_point_interval() -> None:
    assert all(math.isnan(v) for v in iqm_interval([3.0]))
    assert iqm_interval([2.0, 2.0, 2.0]) == (2.0, 2.0)
    low, high = iqm_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert 1.0 <= low <= iqm([1, 2, 3, 4, 5]) <= high <= 5.0
    comparison = compare([1.0], [2.0, 3.0])
    assert comparison.difference == pytest.approx(-1.5) and math.isnan(comparison.difference_low)
    assert math.isnan(compare([], [1.0, 2.0]).difference)


@pytest.mark.parametrize("distribution", ["normal", "lognormal"])
def test_bootstrap_interval_of_the_iqm_covers_the_truth_near_95_percent_at_10_runs(distribution: str) -> None:
    rng = np.random.default_rng(1)
    if distribution == "normal":
        truth, draw = 0.0, lambda: rng.normal(size=10)
    else:
        truth, draw = _lognormal_iqm(), lambda: rng.lognormal(size=10)
        assert stats.trim_mean(rng.lognormal(size=2_000_000), 0.25) == pytest.approx(truth, rel=5e-3)
    trials = 200
    covered = 0
    for k in range(trials):
        low, high = iqm_interval(draw(), seed=k)
        covered += low <= truth <= high
    # Measured 0.93 for both at 300 trials; percentile intervals undercover slightly at n = 10.
    assert 0.87 <= covered / trials <= 0.99


def test_probability_of_improvement_by_hand() -> None:
    # Pairs (x, y): (1, 2) 0, (1, 2) 0, (2, 2) 0.5, (2, 2) 0.5, (3, 2) 1, (3, 2) 1 -> 3 / 6.
    assert compare([1.0, 2.0, 3.0], [2.0, 2.0]).probability_of_improvement == pytest.approx(0.5)
    assert compare([5.0, 6.0], [1.0, 2.0]).probability_of_improvement == 1.0


def test_compare_separates_shifted_methods_and_not_identical_ones() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=10), rng.normal(size=10)
    shifted = compare(a + 3.0, b)
    assert shifted.better and not shifted.worse and shifted.difference_low > 0
    assert shifted.probability_low > 0.5
    assert compare(b, a + 3.0).worse
    # Same distribution: the interval of the difference contains 0 about 95% of the time.
    contains = 0
    for k in range(100):
        x, y = rng.normal(size=10), rng.normal(size=10)
        c = compare(x, y, seed=k)
        contains += c.difference_low <= 0.0 <= c.difference_high
        assert c.difference_low <= c.difference <= c.difference_high
    assert contains >= 85
