"""Plain-data results of training and evaluation (JSON-ready through ``to_dict``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from autogai.core.types import ComponentSummary

TrainStatus = Literal["completed", "pruned", "diverged", "reward_error", "timeout"]
TRAIN_STATUSES: tuple[str, ...] = ("completed", "pruned", "diverged", "reward_error", "timeout")


def _json_float(value: float | None) -> float | None:
    """NaN/inf are not JSON: they become ``None``."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class EvaluationResult:
    """A deterministic policy evaluated on the task fitness (never on the reward) over several episodes."""

    episode_fitness: tuple[float, ...]
    """Task fitness of each episode (``card.episode_fitness`` of the per-step ``card.fitness_fn``)."""
    seed: int
    """Episode ``i`` was reset with seed ``seed + i``."""
    report_metrics: Mapping[str, float] = field(default_factory=dict)
    """Means over all evaluation steps of the card's ``report_metrics`` (UAV: rate, power, ...)."""
    violation_rates: Mapping[str, float] = field(default_factory=dict)
    """Fraction of evaluation steps on which each of the card's ``violation_metrics`` was true."""
    infeasible_fraction: float | None = None
    """``1 - mean(feasible)`` over evaluation steps, where the task has a ``feasible`` metric."""
    oracle_fitness: float | None = None
    """The task's best achievable episode fitness, where the card knows it."""
    episode_length_mean: float = 0.0
    wall_time_s: float = 0.0

    @property
    def episodes(self) -> int:
        return len(self.episode_fitness)

    @property
    def fitness_mean(self) -> float:
        if not self.episode_fitness:
            return float("nan")
        return math.fsum(self.episode_fitness) / len(self.episode_fitness)

    @property
    def fitness_std(self) -> float:
        n = len(self.episode_fitness)
        if n < 2:
            return 0.0
        mean = self.fitness_mean
        return math.sqrt(math.fsum((x - mean) ** 2 for x in self.episode_fitness) / (n - 1))

    @property
    def oracle_fraction(self) -> float | None:
        """Mean fitness as a fraction of the oracle's (1.0 = as good as the physical limit)."""
        if self.oracle_fitness is None or self.oracle_fitness == 0:
            return None
        return self.fitness_mean / self.oracle_fitness

    def to_dict(self) -> dict[str, Any]:
        return {
            "episodes": self.episodes,
            "fitness_mean": _json_float(self.fitness_mean),
            "fitness_std": _json_float(self.fitness_std),
            "episode_fitness": [_json_float(x) for x in self.episode_fitness],
            "seed": self.seed,
            "report_metrics": {k: _json_float(v) for k, v in self.report_metrics.items()},
            "violation_rates": {k: _json_float(v) for k, v in self.violation_rates.items()},
            "infeasible_fraction": _json_float(self.infeasible_fraction),
            "oracle_fitness": _json_float(self.oracle_fitness),
            "oracle_fraction": _json_float(self.oracle_fraction),
            "episode_length_mean": self.episode_length_mean,
            "wall_time_s": self.wall_time_s,
        }

    def summary(self) -> str:
        """One line for people: fitness, report metrics, infeasible fraction, oracle."""
        parts = [f"fitness {self.fitness_mean:.4g} ± {self.fitness_std:.3g} over {self.episodes} episodes"]
        parts += [f"{k} {v:.4g}" for k, v in self.report_metrics.items()]
        if self.infeasible_fraction is not None:
            parts.append(f"infeasible {self.infeasible_fraction:.1%}")
        if self.oracle_fitness is not None:
            fraction = self.oracle_fraction
            share = f" ({fraction:.1%} of it)" if fraction is not None else ""
            parts.append(f"oracle {self.oracle_fitness:.4g}{share}")
        return ", ".join(parts)


@dataclass
class TrainResult:
    """What one training run produced. ``status`` says how it ended and ``reason`` why, when not completed."""

    status: TrainStatus
    reason: str = ""
    final_evaluation: EvaluationResult | None = None
    """Evaluation at the end of training (the last periodic one when pruned); ``None`` when the run
    failed before a policy worth evaluating existed (reward error, divergence)."""
    curve: list[dict[str, float]] = field(default_factory=list)
    """One row per evaluation: step, fitness, episode return, component means, losses (as in curves.csv)."""
    component_summaries: dict[str, ComponentSummary] = field(default_factory=dict)
    violation_rates: dict[str, float] = field(default_factory=dict)
    """Per-step rates of the card's violation metrics over training (exploration included)."""
    agent_path: str | None = None
    """Checkpoint directory (``agent.pt`` + ``checkpoint.json``), when a run directory was given."""
    best_fitness: float | None = None
    """Highest mean fitness of any evaluation during the run (the final policy's may be lower)."""
    best_step: int | None = None
    steps_done: int = 0
    wall_time_s: float = 0.0
    num_updates: int = 0
    episodes_done: int = 0
    run_dir: str | None = None
    seed: int = 0
    """The agent's seed."""
    agent: Any = field(default=None, repr=False, compare=False)
    """The trained population holding this agent (not serialised), for callers that evaluate further
    in-process; ``None`` when the agent left the population before the end."""
    population_position: int | None = None
    """This agent's position in ``agent`` (the population) at the end of training."""

    @property
    def fitness(self) -> float | None:
        """Mean fitness of the final evaluation, if there is one."""
        return None if self.final_evaluation is None else self.final_evaluation.fitness_mean

    @property
    def ok(self) -> bool:
        """True when the run produced a usable policy (completed, pruned or timed out)."""
        return self.status in ("completed", "pruned", "timeout")

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "fitness": _json_float(self.fitness),
            "final_evaluation": None if self.final_evaluation is None else self.final_evaluation.to_dict(),
            "curve": [
                {k: v if isinstance(v, int) else _json_float(v) for k, v in row.items()} for row in self.curve
            ],
            "component_summaries": {
                name: {
                    "mean": _json_float(summary.mean),
                    "min": _json_float(summary.min),
                    "max": _json_float(summary.max),
                    "samples": [_json_float(x) for x in summary.samples],
                    "fitness_correlation": _json_float(summary.fitness_correlation),
                }
                for name, summary in self.component_summaries.items()
            },
            "violation_rates": dict(self.violation_rates),
            "best_fitness": _json_float(self.best_fitness),
            "best_step": self.best_step,
            "agent_path": self.agent_path,
            "steps_done": self.steps_done,
            "wall_time_s": self.wall_time_s,
            "num_updates": self.num_updates,
            "episodes_done": self.episodes_done,
            "run_dir": self.run_dir,
            "seed": self.seed,
        }
