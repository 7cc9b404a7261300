"""Evaluate a policy on the task fitness: deterministic actions, the card's metrics, never the reward.

The evaluation environments are built from the task card without the reward wrapper, so the fitness of a
policy cannot depend on the reward program it was trained with (the reward cannot game its own score).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from autogai.core.errors import ConfigError
from autogai.training.results import EvaluationResult

if TYPE_CHECKING:
    from autogai.tasks.card import TaskCard

_BATCH_ROWS = 32
"""Rows of every actor batch in evaluation (and the most episodes stepped in lock-step)."""
_ORACLE_CACHE: dict[Any, float] = {}


def oracle_fitness(task: TaskCard) -> float | None:
    """The card's oracle episode fitness (computed once per process), or ``None`` if it has none."""
    fn = task.oracle_fitness
    if fn is None:
        return None
    if fn not in _ORACLE_CACHE:
        _ORACLE_CACHE[fn] = float(fn())
    return _ORACLE_CACHE[fn]


def evaluate_agent(
    agent: Any,
    task: TaskCard,
    *,
    episodes: int,
    seed: int,
    env_kwargs: Mapping[str, Any] | None = None,
    with_oracle: bool = True,
) -> EvaluationResult:
    """Run the agent's deterministic policy for ``episodes`` episodes and score them on the task fitness.

    Episode ``i`` is reset with seed ``seed + i``. Up to 32 environments step in lock-step so the actor
    runs once per step on a batch of observations (always 32 rows; see :func:`evaluate_policy`). Per step, fitness is ``task.fitness_fn`` of
    ``task.metrics_fn``; per episode ``task.episode_fitness`` aggregates it (mean for UAV, sum for
    Pendulum). ``with_oracle`` adds the card's oracle fitness for comparison.
    """
    adapter = agent.adapter

    def policy(obs_batch: np.ndarray) -> Sequence[Any]:
        coords = np.asarray(agent.act(obs_batch, explore=False)).reshape(len(obs_batch), -1)
        return _EnvActions(coords, adapter)

    return evaluate_policy(
        policy, task, episodes=episodes, seed=seed, env_kwargs=env_kwargs, with_oracle=with_oracle
    )


class _EnvActions(Sequence[Any]):
    """Env actions of a batch of coords, converted only for the rows that are read."""

    def __init__(self, coords: np.ndarray, adapter: Any) -> None:
        self._coords = coords
        self._adapter = adapter

    def __len__(self) -> int:
        return len(self._coords)

    def __getitem__(self, row: Any) -> Any:
        return self._adapter.to_env(self._coords[row])


def evaluate_policy(
    policy: Callable[[np.ndarray], Sequence[Any]],
    task: TaskCard,
    *,
    episodes: int,
    seed: int,
    env_kwargs: Mapping[str, Any] | None = None,
    with_oracle: bool = True,
) -> EvaluationResult:
    """Like :func:`evaluate_agent` for any batched policy ``obs[B, obs_dim] -> B env actions``.

    The policy always sees a batch of exactly 32 rows, episode ``i`` of a wave always in row ``i``
    (rows of finished or unused envs repeat a stale observation and are ignored). Fixed shapes make the
    result independent of how many episodes run together: matrix kernels round differently for different
    batch sizes, and the UAV task's near-field channel phases amplify such rounding differences into
    visibly different trajectories.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"episodes={episodes!r} must be a positive integer")
    start = time.perf_counter()
    kwargs = dict(env_kwargs or {})
    report_names = tuple(task.report_metrics)
    violation_names = tuple(task.violation_metrics)
    episode_fitness: list[float] = []
    episode_lengths: list[int] = []
    metric_sums: dict[str, float] = {}
    metric_steps = 0

    tracked = tuple(dict.fromkeys((*report_names, *violation_names, "feasible")))

    def record(metrics: Mapping[str, Any]) -> None:
        nonlocal metric_steps
        metric_steps += 1
        for name in tracked:
            if name in metrics:
                metric_sums[name] = metric_sums.get(name, 0.0) + float(metrics[name])

    n_parallel = min(episodes, _BATCH_ROWS)
    envs = [task.make_env(**kwargs) for _ in range(n_parallel)]
    try:
        for wave_start in range(0, episodes, n_parallel):
            wave = range(wave_start, min(episodes, wave_start + n_parallel))
            observations: list[np.ndarray] = []
            for env, episode in zip(envs, wave, strict=False):
                obs, _ = env.reset(seed=seed + episode)
                observations.append(np.asarray(obs))
            active = list(range(len(wave)))
            step_fitness: list[list[float]] = [[] for _ in wave]
            batch = np.repeat(np.asarray(observations[0], dtype=np.float32)[None], _BATCH_ROWS, axis=0)
            while active:
                for i in active:
                    batch[i] = observations[i]
                actions = policy(batch)
                still_active = []
                for i in active:
                    action = actions[i]
                    obs = observations[i]
                    next_obs, env_reward, terminated, truncated, info = envs[i].step(action)
                    metrics = task.metrics_fn(obs, action, float(env_reward), next_obs, info)
                    step_fitness[i].append(float(task.fitness_fn(metrics, float(env_reward))))
                    record(metrics)
                    observations[i] = np.asarray(next_obs)
                    if not (terminated or truncated):
                        still_active.append(i)
                active = still_active
            for values in step_fitness:
                episode_fitness.append(task.episode_fitness(values))
                episode_lengths.append(len(values))
    finally:
        for env in envs:
            env.close()

    def mean_of(name: str) -> float:
        return metric_sums[name] / metric_steps if metric_steps else math.nan

    report = {name: mean_of(name) for name in report_names if name in metric_sums}
    violations = {name: mean_of(name) for name in violation_names if name in metric_sums}
    infeasible = 1.0 - mean_of("feasible") if "feasible" in metric_sums else None
    return EvaluationResult(
        episode_fitness=tuple(episode_fitness),
        seed=seed,
        report_metrics=report,
        violation_rates=violations,
        infeasible_fraction=infeasible,
        oracle_fitness=oracle_fitness(task) if with_oracle else None,
        episode_length_mean=float(np.mean(episode_lengths)),
        wall_time_s=time.perf_counter() - start,
    )
