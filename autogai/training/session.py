"""A population's training session: P TD3 agents, their environments and one reward sandbox, advanced step by step.

Building a :class:`PopulationSession` builds P x E environments (:class:`PopulationEnv`: every agent its own
envs), one sandbox for the reward program (each agent with its own ``PARAMS``) and one :class:`TD3Population`
for the agents' configurations. :meth:`PopulationSession.advance` acts uniformly at random for
``learning_starts`` steps, then with each agent's exploration noise; per population step one sandbox round
trip computes every agent's rewards; every ``train_freq`` steps it runs ``gradient_steps`` updates of all
agents at once. It reports the agents that must leave (non-finite actions or losses, a reward program that
failed for their ``PARAMS``) and :meth:`PopulationSession.leave` removes them; no compute is spent on a
leaver afterwards. :func:`autogai.training.loop.train` drives a session to its step budget with periodic
evaluations; benchmarks drive one directly.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from autogai.core.errors import ConfigError, RewardRuntimeError
from autogai.core.seeding import derive_seed, seed_everything
from autogai.core.types import EnhancerCombo
from autogai.training.evaluation import evaluate_population, nonfinite_rows
from autogai.training.metrics import LossAverager, TrainingStats
from autogai.training.population_env import PopulationEnv
from autogai.training.results import EvaluationResult

if TYPE_CHECKING:
    from autogai.agents import TD3Config, TD3Population
    from autogai.tasks.card import TaskCard


def evaluation_seed(seed: int) -> int:
    """Seed of the periodic evaluations of a run whose first agent has seed ``seed`` (disjoint from training)."""
    return derive_seed("evaluation", seed)


@dataclass(frozen=True)
class AgentSpec:
    """One agent of a population: its seed, TD3 configuration, reward ``PARAMS`` and time budget."""

    seed: int = 0
    td3_config: TD3Config | None = None
    """``None``: TD3's defaults. Agents of one population may differ only in ``PER_AGENT_FIELDS``."""
    reward_params: Mapping[str, float] = field(default_factory=dict)
    """Values of the reward program's ``PARAMS`` (its defaults for the missing ones)."""
    time_limit_s: float | None = None
    """Wall-clock budget of this agent; it leaves with status ``timeout`` when it is spent."""


def _free_memory_bytes(device: Any) -> int | None:
    """Memory available for a population on ``device`` (None when unknown)."""
    if device.type == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


class PopulationSession:
    """A population's training run that can be advanced step by step (``train`` drives one; benchmarks
    drive it directly). Building it builds the envs, the reward sandbox and the agents; :meth:`close`
    (or a ``with`` block) stops the sandbox."""

    def __init__(
        self,
        task: TaskCard,
        agents: Sequence[AgentSpec],
        *,
        enhancers: str | EnhancerCombo = "plain",
        reward_source: str | None = None,
        env_kwargs: Mapping[str, Any] | None = None,
        envs_per_agent: int = 1,
        total_steps: int | None = None,
        eval_scenario_seeds: Sequence[int] | None = None,
    ) -> None:
        from autogai.agents import TD3Config, TD3Population, check_same_population
        from autogai.rewards import RewardProgram, SandboxedReward

        if not agents:
            raise ConfigError("a population needs at least one agent (got 0)")
        self.task = task
        self.specs = list(agents)
        self.enhancers = EnhancerCombo.parse(enhancers)
        configs = [s.td3_config if s.td3_config is not None else TD3Config() for s in self.specs]
        self.config = check_same_population(configs)
        self.env_kwargs = dict(env_kwargs or {})
        self.eval_scenario_seeds = (
            None if eval_scenario_seeds is None else [int(s) for s in eval_scenario_seeds]
        )
        """Scenarios every evaluation episode runs on (held-out ones for validation and test runs)."""
        self.reward_source = reward_source if reward_source is not None else task.baseline_reward
        seed_everything(self.specs[0].seed)

        # Static checks of the program first: a rejected program must not cost an env or a process.
        self.program = RewardProgram.from_source(self.reward_source)
        defaults = self.program.default_params()
        self.reward_params: list[dict[str, float]] = []
        for spec in self.specs:
            unknown = set(spec.reward_params) - set(defaults)
            if unknown:
                valid = ", ".join(sorted(defaults)) or "(the program has no PARAMS)"
                raise ConfigError(f"unknown reward parameter(s) {sorted(unknown)}; valid: {valid}")
            self.reward_params.append({**defaults, **{k: float(v) for k, v in spec.reward_params.items()}})

        self.env = PopulationEnv(
            task, len(self.specs), envs_per_agent, env_kwargs=self.env_kwargs, seed=self.specs[0].seed
        )
        self.sandbox: Any = None
        try:
            capacity = None if total_steps is None else int(total_steps) * envs_per_agent
            layout: dict[str, Any] = {
                "seeds": [s.seed for s in self.specs],
                "token_groups": self.env.token_groups,
                "action_codebook": self.env.action_codebook,
                "capacity": capacity,
            }
            spaces = (self.env.single_observation_space, self.env.single_action_space)
            need = TD3Population.estimate_bytes(*spaces, self.enhancers, configs, **layout)
            self._check_memory(need, len(self.specs), self.config)
            self.population: TD3Population = TD3Population(*spaces, self.enhancers, configs, **layout)
            self.env.adapter = self.population.adapter
            self.sandbox_params = self.reward_params[0]
            self.sandbox = SandboxedReward(self.program, task, self.sandbox_params)
            self.obs = self.env.reset()
        except BaseException:
            self.close()
            raise
        self.adapter = self.population.adapter
        self.steps = 0
        # positions[k] = index into self.specs of the agent at population position k
        self.positions = list(range(len(self.specs)))
        self.stats = [TrainingStats(task.violation_metrics) for _ in self.specs]
        self.losses = [LossAverager() for _ in self.specs]
        self.eval_seed = evaluation_seed(self.specs[0].seed)
        gradient_steps = int(self.config.gradient_steps)
        self._gradient_steps = gradient_steps if gradient_steps > 0 else int(self.config.train_freq)

    @staticmethod
    def _check_memory(need: int, agents: int, config: TD3Config) -> None:
        """Before anything large exists: the population's estimated memory against the device's free memory."""
        from autogai.agents.td3 import resolve_device

        device = resolve_device(config.device)
        free = _free_memory_bytes(device)
        if free is not None and need > free:
            raise ConfigError(
                f"the population needs about {need / 2**30:.1f} GiB ({agents} agents, networks "
                f"{'x'.join(map(str, config.net_arch))}, replay of up to {config.buffer_size} rows each) but "
                f"{device} has {free / 2**30:.1f} GiB free; train fewer agents at once or shrink the networks "
                "or buffer_size"
            )

    # -- stepping ---------------------------------------------------------------------------------------
    def advance(self, n_steps: int) -> dict[int, tuple[str, str]]:
        """Run ``n_steps`` population steps (acting, rewards, storing, updating).

        Returns the agents that must leave, ``{spec index: (status, reason)}``; the caller removes them
        with :meth:`leave` (``advance`` stops at the first step that produced leavers).
        """
        population, env, task = self.population, self.env, self.task
        learning_starts = int(self.config.learning_starts)
        train_freq = int(self.config.train_freq)
        agents = population.size
        per_agent = env.envs_per_agent
        param_index = np.repeat(np.arange(agents), per_agent)
        for _ in range(n_steps):
            leaving: dict[int, tuple[str, str]] = {}
            coords = population.act(self.obs, explore=True)
            bad = nonfinite_rows(coords)
            for k in map(int, np.flatnonzero(bad)):
                leaving[self.positions[k]] = (
                    "diverged",
                    f"the actor produced non-finite actions at step {self.steps} (after {population.num_updates} updates)",
                )
            if leaving:
                return leaving
            step = env.step(coords)
            rows = agents * per_agent
            rewards = self._rewards(step, coords, param_index)
            for row, reason in rewards.errors.items():
                leaving.setdefault(self.positions[row // per_agent], ("reward_error", reason))
            population.add_transitions(
                step.obs,
                coords,
                np.nan_to_num(rewards.totals).reshape(agents, per_agent),
                step.next_obs,
                step.terminated,
            )
            for row in range(rows):
                k = row // per_agent
                stats = self.stats[self.positions[k]]
                components = {name: float(values[row]) for name, values in rewards.components.items()}
                stats.on_step(
                    float(rewards.totals[row]),
                    components,
                    step.metrics[row],
                    float(step.step_fitness.flat[row]),
                )
                if step.done.flat[row]:
                    stats.on_episode_end(task.episode_fitness(stats.current_step_fitness))
            self.obs = env.observations
            self.steps += 1
            if self.steps > learning_starts and self.steps % train_freq == 0:
                losses = population.train_step(self._gradient_steps)
                if losses:
                    table = np.stack(list(losses.values()), axis=1)  # [P, n_losses]
                    for k in map(int, np.flatnonzero(nonfinite_rows(table))):
                        bad_names = [n for n, v in losses.items() if not math.isfinite(float(v[k]))]
                        leaving.setdefault(
                            self.positions[k],
                            (
                                "diverged",
                                f"non-finite {', '.join(bad_names)} at step {self.steps} "
                                f"(after {population.num_updates} updates, enhancers {self.enhancers.short_name})",
                            ),
                        )
                    for k, spec_index in enumerate(self.positions):
                        self.losses[spec_index].add({n: float(v[k]) for n, v in losses.items()})
            if leaving:
                return leaving
        return {}

    def _rewards(self, step: Any, coords: np.ndarray, param_index: np.ndarray) -> Any:
        """Every row's reward in one sandbox round trip, each row with its agent's ``PARAMS``."""
        from autogai.rewards import RowRewards

        rows = param_index.shape[0]
        obs, next_obs = step.obs.reshape(rows, -1), step.next_obs.reshape(rows, -1)
        actions = np.asarray(coords, dtype=np.float64).reshape(rows, -1)
        params = [self.reward_params[i] for i in self.positions]
        if rows == 1 and params[0] == self.sandbox_params:
            # The single agent: the one-transition call is ~5x cheaper than a one-row batch.
            try:
                total, components = self.sandbox.compute(step.metrics[0], obs[0], actions[0], next_obs[0])
            except RewardRuntimeError as exc:
                return RowRewards(np.full(1, np.nan), {}, {0: str(exc)})
            return RowRewards(np.array([total]), {k: np.array([v]) for k, v in components.items()}, {})
        metrics = {
            name: np.fromiter((float(m.get(name, math.nan)) for m in step.metrics), float, rows)
            for name in self.task.metric_names
        }
        return self.sandbox.compute_rows(metrics, obs, actions, next_obs, params, param_index)

    def leave(self, spec_indices: Sequence[int]) -> None:
        """Remove agents (by spec index) from the population, its envs and its reward rows."""
        gone = set(spec_indices)
        keep = [k for k, index in enumerate(self.positions) if index not in gone]
        if not keep:
            self.positions = []
            return
        self.population.keep(keep)
        self.env.keep(keep)
        self.obs = self.env.observations
        self.positions = [self.positions[k] for k in keep]

    def nonfinite_agents(self) -> list[int]:
        """Spec indices of agents with a non-finite parameter."""
        return [self.positions[k] for k in self.population.nonfinite_agents()]

    def evaluate(self, episodes: int, *, with_oracle: bool = False) -> dict[int, EvaluationResult]:
        """Every live agent's deterministic policy on the task fitness: ``{spec index: result}``."""
        scenarios = self.eval_scenario_seeds
        results = evaluate_population(
            self.population,
            self.task,
            episodes=episodes if scenarios is None else len(scenarios),
            seed=self.eval_seed,
            env_kwargs=self.env_kwargs,
            with_oracle=with_oracle,
            scenario_seeds=scenarios,
        )
        return dict(zip(self.positions, results, strict=True))

    def checkpoint_meta(self, **extra: Any) -> dict[str, Any]:
        return {
            "task": self.task.id,
            "env_kwargs": self.env_kwargs,
            "enhancers": self.enhancers.to_dict(),
            "enhancers_short": self.enhancers.short_name,
            "reward_source": self.reward_source,
            "agents": [
                {
                    "index": index,
                    "seed": self.specs[index].seed,
                    "td3_config": self.population.configs[k].to_dict(),
                    "reward_params": self.reward_params[index],
                }
                for k, index in enumerate(self.positions)
            ],
            "eval_seed": self.eval_seed,
            "steps": self.steps,
            "num_updates": int(self.population.num_updates),
            **extra,
        }

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None
        self.env.close()

    def __enter__(self) -> PopulationSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
