"""The statistics every claim uses: IQM, its bootstrap interval, the difference interval and P(improvement)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from autogai.core.statistics import compare, estimate, iqm, iqm_interval


def test_iqm_is_the_25_percent_trimmed_mean() -> None:
    values = np.array([100.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, -50.0, 8.0])
    assert iqm(values) == pytest.approx(stats.trim_mean(values, 0.25))
    assert iqm(values) == pytest.approx(np.mean(np.sort(values)[2:8]))
    assert math.isnan(iqm([]))
    assert iqm([1.0, float("nan"), 3.0]) == pytest.approx(2.0)  # a failed run has no score


@pytest.mark.parametrize("draw", ["normal", "lognormal"])
def test_iqm_interval_covers_the_true_iqm_about_95_percent_at_n_10(draw: str) -> None:
    rng = np.random.default_rng(7)
    population = rng.normal(size=2_000_000) if draw == "normal" else rng.lognormal(size=2_000_000)
    truth = stats.trim_mean(population, 0.25)
    trials = 400
    hits = 0
    for i in range(trials):
        sample = rng.normal(size=10) if draw == "normal" else rng.lognormal(size=10)
        low, high = iqm_interval(sample, seed=i)
        hits += low <= truth <= high
    coverage = hits / trials
    # Within 3 points of 95% (the binomial standard error at 400 trials is ~1.1 points).
    assert 0.92 <= coverage <= 0.98, coverage


def test_difference_interval_excludes_zero_only_for_a_real_difference() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(10.0, 1.0, size=10)
    b = rng.normal(8.0, 1.0, size=10)
    same = rng.normal(8.0, 1.0, size=10)
    better = compare(a, b)
    assert better.better and not better.worse
    assert better.difference_low > 0 and better.difference == pytest.approx(iqm(a) - iqm(b))
    assert 0.9 < better.probability_of_improvement <= 1.0
    assert better.probability_low <= better.probability_of_improvement <= better.probability_high
    tie = compare(same, b)
    assert tie.difference_low < 0 < tie.difference_high
    assert not tie.better and not tie.worse
    assert compare(b, a).worse


def test_probability_of_improvement_is_the_normalised_mann_whitney_statistic() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    y = np.array([2.5, 2.5, 0.0])
    u = stats.mannwhitneyu(x, y).statistic
    assert compare(x, y).probability_of_improvement == pytest.approx(u / (len(x) * len(y)))


def test_difference_coverage_at_n_10() -> None:
    """The 95% interval of an IQM difference between two methods covers the true difference."""
    rng = np.random.default_rng(3)
    hits, trials = 0, 200
    for i in range(trials):
        a, b = rng.normal(1.0, 1.0, size=10), rng.normal(0.0, 2.0, size=10)
        result = compare(a, b, seed=i)
        hits += result.difference_low <= 1.0 <= result.difference_high
    assert 0.90 <= hits / trials <= 0.99


def test_estimate_and_degenerate_inputs() -> None:
    score = estimate([3.0, 1.0, 2.0, 4.0, float("inf")])
    assert score.n == 4 and score.low <= score.iqm <= score.high
    single = estimate([5.0])
    assert single.n == 1 and single.iqm == 5.0 and math.isnan(single.low)
    assert iqm_interval([2.0, 2.0, 2.0]) == (2.0, 2.0)
    empty = compare([], [1.0, 2.0])
    assert math.isnan(empty.difference) and not empty.better
