"""Score statistics of designs: a design's held-out runs summarised with :mod:`autogai.core.statistics`
(IQM with a 95% percentile bootstrap interval, SciPy's bootstrap) and the rate-vs-power Pareto front.

``scores`` is always a 1-D array of shape ``[n_runs]``: one score per independent run (a held-out seed's
evaluation fitness).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autogai.core.statistics import estimate


@dataclass(frozen=True)
class ScoreSummary:
    """A design's score over held-out runs: ``ci_low``/``ci_high`` bound the IQM (95%, bootstrap)."""

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


def summarize_scores(scores: np.ndarray, *, seed: int = 0) -> ScoreSummary:
    """Mean, IQM and the IQM's 95% bootstrap interval for ``scores`` of shape ``[n_runs]``."""
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    values = values[np.isfinite(values)]
    score = estimate(values, seed=seed)
    std = float(np.std(values, ddof=1)) if values.size > 1 else (0.0 if values.size else float("nan"))
    return ScoreSummary(score.n, score.mean, score.iqm, score.low, score.high, std)


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
