"""Score statistics of designs, rliable-style: pure NumPy functions with explicit shapes.

``scores`` is always a 1-D array of shape ``[n_runs]``: one score per independent run (a held-out seed's
mean evaluation fitness). Intervals are percentile bootstrap intervals over runs (Agarwal et al.,
"Deep RL at the Edge of the Statistical Precipice", NeurIPS 2021).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Statistic = Callable[[np.ndarray], np.ndarray]
"""Maps resampled scores ``[n_resamples, n_runs]`` to one value per resample ``[n_resamples]``."""


def mean_score(scores: np.ndarray) -> np.ndarray:
    """Mean over the last axis: ``[..., n_runs] -> [...]``."""
    return np.mean(np.asarray(scores, dtype=np.float64), axis=-1)


def iqm_score(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean over the last axis (mean of the middle 50% of runs): ``[..., n_runs] -> [...]``.

    Uses rliable's definition (scipy's ``trim_mean(x, 0.25)``): with n runs, ``floor(0.25 n)`` runs are cut
    from each end. For n < 4 nothing is cut and the IQM equals the mean.
    """
    values = np.sort(np.asarray(scores, dtype=np.float64), axis=-1)
    n = values.shape[-1]
    cut = int(np.floor(0.25 * n))
    return np.mean(values[..., cut : n - cut], axis=-1)


def bootstrap_interval(
    scores: np.ndarray,
    statistic: Statistic = mean_score,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    rng: np.random.Generator | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over runs. ``scores``: ``[n_runs]``.

    Returns ``(nan, nan)`` without runs and ``(x, x)`` for a single run (no spread can be estimated).
    """
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    if values.size == 1:
        return (float(values[0]), float(values[0]))
    rng = rng if rng is not None else np.random.default_rng(0)
    indices = rng.integers(0, values.size, size=(n_resamples, values.size))  # [n_resamples, n_runs]
    estimates = statistic(values[indices])  # [n_resamples]
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(estimates, [alpha, 1.0 - alpha])
    return (float(low), float(high))


@dataclass(frozen=True)
class ScoreSummary:
    """A design's score over held-out runs."""

    n_runs: int
    mean: float
    iqm: float
    ci_low: float
    ci_high: float
    std: float

    def to_dict(self) -> dict[str, float | int | None]:
        def clean(x: float) -> float | None:
            return float(x) if np.isfinite(x) else None

        return {
            "n_runs": self.n_runs,
            "mean": clean(self.mean),
            "iqm": clean(self.iqm),
            "ci_low": clean(self.ci_low),
            "ci_high": clean(self.ci_high),
            "std": clean(self.std),
        }


def summarize_scores(scores: np.ndarray, *, confidence: float = 0.95, seed: int = 0) -> ScoreSummary:
    """Mean, IQM and the bootstrap interval of the mean for ``scores`` of shape ``[n_runs]``."""
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    if values.size == 0:
        nan = float("nan")
        return ScoreSummary(0, nan, nan, nan, nan, nan)
    low, high = bootstrap_interval(values, mean_score, confidence=confidence, rng=np.random.default_rng(seed))
    std = float(np.std(values, ddof=1)) if values.size > 1 else 0.0
    return ScoreSummary(int(values.size), float(mean_score(values)), float(iqm_score(values)), low, high, std)


def pareto_front(points: np.ndarray, maximize: tuple[bool, ...]) -> np.ndarray:
    """Boolean mask ``[n_points]`` of the non-dominated rows of ``points`` ``[n_points, n_objectives]``."""
    values = np.asarray(points, dtype=np.float64)
    signs = np.where(np.asarray(maximize), 1.0, -1.0)
    oriented = values * signs  # now every objective is maximised
    n = oriented.shape[0]
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not np.all(np.isfinite(oriented[i])):
            mask[i] = False
            continue
        others = np.delete(oriented, i, axis=0)
        dominated = np.any(np.all(others >= oriented[i], axis=1) & np.any(others > oriented[i], axis=1))
        mask[i] = not dominated
    return mask
