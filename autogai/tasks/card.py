"""Task cards: everything a proposer, a reward program and the trainer need to know about a task.

A card names the gymnasium environment, the per-step metrics a reward program may read (name, unit,
meaning), the fitness designs are ranked on (computed from the environment, never from the reward), and
the baseline reward program. Cards are plain data plus two small functions, so users can write their own
for any registered gymnasium env (see :mod:`autogai.tasks.registry`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from autogai.core.errors import ConfigError

if TYPE_CHECKING:
    import gymnasium as gym

MetricsFn = Callable[[np.ndarray, Any, float, np.ndarray, Mapping[str, Any]], dict[str, float]]
"""(obs, executed action, env reward, next_obs, info) -> named per-step metrics for reward programs."""

FitnessFn = Callable[[Mapping[str, float], float], float]
"""(metrics of the step, env reward) -> the step's contribution to the task fitness."""


@dataclass(frozen=True)
class MetricSpec:
    """One named per-step metric a reward program may read as ``m.<name>``."""

    name: str
    unit: str
    meaning: str


@dataclass(frozen=True)
class TaskCard:
    """What autogai knows about a task. See ``ARCHITECTURE.md`` ("Task card")."""

    id: str
    """Short id used on the command line, e.g. ``uav-nearfield``."""
    title: str
    description: str
    """Prose for the LLM: the scenario, the objective, the constraints."""
    env_id: str
    """A registered gymnasium id, e.g. ``autogai/UAVNearField-v0``."""
    metrics: tuple[MetricSpec, ...]
    """The metrics ``metrics_fn`` returns each step, documented for the LLM and the reward validator."""
    fitness_description: str
    """How fitness is computed, in prose (shown to the LLM and in reports)."""
    baseline_reward: str
    """The baseline reward program's source (the public contract of REWARD_PROGRAMS.md)."""
    metrics_fn: MetricsFn
    fitness_fn: FitnessFn
    fitness_aggregate: Literal["mean", "sum"] = "mean"
    """Episode fitness = mean (UAV: utility per slot) or sum (Pendulum: return) of the step fitness."""
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    report_metrics: tuple[str, ...] = ()
    """Metrics averaged over evaluation episodes and shown next to fitness (e.g. rate, power)."""
    violation_metrics: tuple[str, ...] = ()
    """Boolean metrics counted as constraint violations (their rates go into feedback)."""
    oracle_fitness: Callable[[], float] | None = None
    """Best achievable episode fitness, where the task knows it (UAV: scripted oracle)."""
    action_modes: tuple[str, ...] = ()
    """Values of the env kwarg ``action_mode`` the task supports (empty: the env's own space only)."""
    max_episode_steps: int | None = None
    tags: tuple[str, ...] = ()
    judge_metrics: tuple[str, ...] | None = None
    """Metrics only the judge may read: reward programs reading them (by any route) are rejected, and they are
    never sent to the sandbox. None: ``("fitness",)`` when the card has a ``fitness`` metric, else none. A
    task whose fitness is the native reward says so with ``()``."""

    def __post_init__(self) -> None:
        if not self.id or not self.id.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"task id {self.id!r} must be non-empty letters, digits, '-' or '_'")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ConfigError(f"task {self.id}: duplicate metric names in {names}")
        reserved = {"obs", "next_obs", "action"} & set(names)
        if reserved:
            raise ConfigError(f"task {self.id}: metric names {sorted(reserved)} are reserved")
        if self.fitness_aggregate not in ("mean", "sum"):
            raise ConfigError(f"task {self.id}: fitness_aggregate must be 'mean' or 'sum'")
        judges = self.judge_metrics
        if judges is None:
            judges = ("fitness",) if "fitness" in names else ()
        judges = tuple(judges)
        unknown = sorted(set(judges) - set(names))
        if unknown:
            raise ConfigError(f"task {self.id}: judge_metrics {unknown} are not metrics of the card")
        object.__setattr__(self, "judge_metrics", judges)

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics)

    @property
    def program_metric_names(self) -> tuple[str, ...]:
        """The metrics a reward program may read: all but the judge-only ones."""
        judges = set(self.judge_metrics or ())
        return tuple(m.name for m in self.metrics if m.name not in judges)

    def make_env(self, **overrides: Any) -> gym.Env:
        """Build the task's environment with the card's kwargs, overridden by ``overrides``."""
        import gymnasium as gym

        from autogai.envs import register_envs

        register_envs()
        kwargs = {**self.env_kwargs, **overrides}
        try:
            return gym.make(self.env_id, **kwargs)
        except gym.error.Error as exc:  # unknown id, bad kwargs reported by gymnasium
            raise ConfigError(f"task {self.id}: cannot make env {self.env_id!r}: {exc}") from exc

    def episode_fitness(self, step_fitness: Sequence[float]) -> float:
        """Aggregate per-step fitness values of one episode."""
        values = np.asarray(step_fitness, dtype=np.float64)
        if values.size == 0:
            return float("nan")
        return float(values.mean() if self.fitness_aggregate == "mean" else values.sum())

    def metrics_table(self) -> str:
        """The metric table as Markdown (for prompts and ``autogai show``)."""
        rows = ["| name | unit | meaning |", "|---|---|---|"]
        judges = set(self.judge_metrics or ())
        rows += [
            f"| {m.name} | {m.unit} | {m.meaning}{' (judge only: not readable by reward programs)' if m.name in judges else ''} |"
            for m in self.metrics
        ]
        return "\n".join(rows)
