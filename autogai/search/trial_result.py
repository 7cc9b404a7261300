"""One trial's result, in one form from the training run to the leaderboard.

A worker turns a :class:`~autogai.training.results.TrainResult` into a :class:`TrialResult`, stores it as the
Optuna trial's user attributes (:meth:`TrialResult.to_attrs`) and the pipeline reads it back
(:meth:`TrialResult.from_attrs`, through :class:`~autogai.search.records.TrialRecord`): the ranking, the
feedback, the report and the run directory's tables all see these fields and no others.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any


def finite(x: Any) -> float | None:
    """``x`` as a float, or None when it is missing or not finite (JSON has no NaN)."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


@dataclass
class TrialResult:
    """What a tuning trial, a validation run or a test run reports (user attributes of its Optuna trial)."""

    kind: str = "tuning"
    """``tuning``, ``validation`` or ``test``."""
    status: str = ""
    """The training run's status (``completed``, ``pruned``, ``diverged``, ``timeout``, ``reward_error``,
    ``config_error``, ``crashed``, ...); empty while queued."""
    reason: str | None = None
    seed: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    """The fixed configuration of a validation or test run (tuning trials keep theirs as Optuna params)."""
    config_key: str | None = None
    source: str | None = None
    """Where a validated configuration came from: ``defaults`` or ``tuning trial N``."""
    reward_params: dict[str, float] = field(default_factory=dict)
    fitness: float | None = None
    steps_done: int = 0
    wall_time_s: float | None = None
    duration_s: float | None = None
    """Wall time of the whole population the trial trained in."""
    population: int | None = None
    """Agents in that population."""
    claim_s: float | None = None
    """How long the worker took to claim the trial's batch (storage latency under many workers)."""
    episode_fitness: list[float] = field(default_factory=list)
    report_metrics: dict[str, float] = field(default_factory=dict)
    eval_violation_rates: dict[str, float] = field(default_factory=dict)
    infeasible_fraction: float | None = None
    oracle_fitness: float | None = None
    components: dict[str, Any] = field(default_factory=dict)
    """Per reward component: mean/min/max, samples and correlation with fitness over training."""
    violation_rates: dict[str, float] = field(default_factory=dict)
    curve: list[dict[str, float | None]] = field(default_factory=list)
    worker: dict[str, Any] | None = None
    surplus: bool = False
    """A trial no one asked for (a lost race with a remote worker), told FAIL at once and not counted."""

    def to_attrs(self) -> dict[str, Any]:
        """The user attributes to store (JSON-safe; empty and missing fields left out)."""
        return {k: v for k, v in asdict(self).items() if v not in (None, "", [], {}) and v is not False}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> TrialResult:
        """Read back what :meth:`to_attrs` (or the queue) stored; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in attrs.items() if k in known and v is not None})

    @classmethod
    def from_training(cls, base: TrialResult, result: Any) -> TrialResult:
        """``base`` (kind, seed, configuration) completed with a training run's result."""
        data = result.to_dict()
        evaluation = data.get("final_evaluation") or {}
        return cls(
            **{
                **asdict(base),
                "status": result.status,
                "reason": result.reason,
                "fitness": finite(data.get("fitness")),
                "steps_done": int(result.steps_done),
                "wall_time_s": round(float(result.wall_time_s), 3),
                "episode_fitness": list(evaluation.get("episode_fitness", [])),
                "report_metrics": dict(evaluation.get("report_metrics", {})),
                "eval_violation_rates": dict(evaluation.get("violation_rates", {})),
                "infeasible_fraction": evaluation.get("infeasible_fraction"),
                "oracle_fitness": evaluation.get("oracle_fitness"),
                "components": dict(data.get("component_summaries", {})),
                "violation_rates": dict(data.get("violation_rates", {})),
                "curve": [{k: finite(v) for k, v in row.items()} for row in data.get("curve", [])],
            }
        )
