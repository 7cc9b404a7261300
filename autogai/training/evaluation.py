"""Evaluate policies on the task fitness: deterministic actions, the card's metrics, never the reward.

The evaluation environments are built from the task card without any reward program, so the fitness of a
policy cannot depend on the reward it was trained with (the reward cannot game its own score). All agents of
a population are evaluated together and on the same episodes (episode ``j`` of every agent is reset with
``seed + j``), so their scores differ by the policies alone.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from autogai.core.errors import ConfigError
from autogai.training.population_env import PopulationEnv
from autogai.training.results import EvaluationResult

if TYPE_CHECKING:
    from autogai.agents import TD3Population
    from autogai.tasks.card import TaskCard

_ORACLE_CACHE: dict[Any, float] = {}


def nonfinite_rows(values: np.ndarray) -> np.ndarray:
    """Boolean ``[P]``: the agents whose rows of ``values [P, ...]`` (actions, losses) hold any NaN or inf."""
    array = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    return np.asarray(~np.isfinite(array).all(axis=1))


def oracle_fitness(task: TaskCard) -> float | None:
    """The card's oracle episode fitness (computed once per process), or ``None`` if it has none."""
    fn = task.oracle_fitness
    if fn is None:
        return None
    if fn not in _ORACLE_CACHE:
        _ORACLE_CACHE[fn] = float(fn())
    return _ORACLE_CACHE[fn]


def evaluate_population(
    population: TD3Population,
    task: TaskCard,
    *,
    episodes: int,
    seed: int,
    env_kwargs: Mapping[str, Any] | None = None,
    with_oracle: bool = True,
    scenario_seeds: Sequence[int] | None = None,
) -> list[EvaluationResult]:
    """Run every agent's deterministic policy for ``episodes`` episodes; one result per agent, in order.

    ``scenario_seeds`` (one per episode; the UAV task's ``scenario_seeds("heldout", n)``) evaluates on those
    scenarios of an env with a scenario distribution, every agent on the same ones.

    Per step, fitness is ``task.fitness_fn`` of ``task.metrics_fn``; per episode ``task.episode_fitness``
    aggregates it (mean for UAV, sum for Pendulum). An agent whose policy produces non-finite actions gets
    NaN fitness (the trainer treats it as diverged). ``with_oracle`` adds the card's oracle fitness.
    """
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"episodes={episodes!r} must be a positive integer")
    start = time.perf_counter()
    agents = population.size
    env = PopulationEnv(
        task,
        agents,
        episodes,
        env_kwargs=env_kwargs,
        row_seeds=[seed + j for _ in range(agents) for j in range(episodes)],
        scenario_seeds=None
        if scenario_seeds is None
        else [int(scenario_seeds[j]) for _ in range(agents) for j in range(episodes)],
        adapter=population.adapter,
    )
    report_names = tuple(task.report_metrics)
    violation_names = tuple(task.violation_metrics)
    tracked = tuple(dict.fromkeys((*report_names, *violation_names, "feasible")))
    rows = agents * episodes
    step_fitness: list[list[float]] = [[] for _ in range(rows)]
    metric_sums = np.zeros((agents, len(tracked)))
    metric_steps = np.zeros(agents)
    finished = np.zeros(rows, dtype=bool)
    broken = np.zeros(agents, dtype=bool)
    try:
        obs = env.reset()
        while not finished.all():
            coords = population.act(obs, explore=False)
            bad = nonfinite_rows(coords)
            if bad.any():  # a diverged policy: score it NaN, step its rows with zeros
                broken |= bad
                coords[bad] = 0.0
            step = env.step(coords)
            for r in map(int, np.flatnonzero(~finished)):
                metrics = step.metrics[r]
                step_fitness[r].append(float(step.step_fitness.flat[r]))
                agent = r // episodes
                metric_steps[agent] += 1
                for j, name in enumerate(tracked):
                    if name in metrics:
                        metric_sums[agent, j] += float(metrics[name])
            finished |= step.done.reshape(-1)
            obs = env.observations
    finally:
        env.close()

    oracle = oracle_fitness(task) if with_oracle else None
    elapsed = time.perf_counter() - start
    present = set().union(*(m.keys() for m in step.metrics)) if rows else set()
    results = []
    for agent in range(agents):
        values = step_fitness[agent * episodes : (agent + 1) * episodes]
        fitness = tuple(math.nan if broken[agent] else task.episode_fitness(v) for v in values)
        means = {
            name: metric_sums[agent, j] / metric_steps[agent] if metric_steps[agent] else math.nan
            for j, name in enumerate(tracked)
        }
        results.append(
            EvaluationResult(
                episode_fitness=fitness,
                seed=seed,
                report_metrics={n: means[n] for n in report_names if n in present},
                violation_rates={n: means[n] for n in violation_names if n in present},
                infeasible_fraction=1.0 - means["feasible"] if "feasible" in present else None,
                oracle_fitness=oracle,
                episode_length_mean=float(np.mean([len(v) for v in values])),
                wall_time_s=elapsed,
            )
        )
    return results
