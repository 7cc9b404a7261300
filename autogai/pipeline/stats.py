"""The rate-vs-power Pareto front of the report. (Scores of designs are
:class:`autogai.core.statistics.ScoreEstimate`: one type from the trial to the leaderboard.)"""

from __future__ import annotations

import numpy as np


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
