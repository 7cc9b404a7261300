"""The environments of a population: P agents x E envs each, stepped together, agents never sharing an env.

Rows are agent-major: agent ``i`` owns rows ``i * E .. i * E + E - 1``; arrays come and go as ``[P, E, ...]``.

Two back ends:

- a task whose Gymnasium spec names a ``vector_entry_point`` (the UAV task's batched simulator) is stepped
  as one batch of P x E rows. Such a simulator shares one clock (fixed-horizon episodes end together), so
  agents that left are dropped from the batch at the next episode boundary, when the batch is rebuilt;
- any other task runs one Gymnasium env per row, stepped in a loop with same-step auto-reset (the scheme
  of ``gymnasium.vector.SyncVectorEnv`` with ``AutoresetMode.SAME_STEP``). It is not SyncVectorEnv itself
  because agents leave mid-episode and SyncVectorEnv cannot drop sub-environments; here a leaving agent's
  envs are closed at once and never stepped again.

Per step the task card's ``metrics_fn`` and ``fitness_fn`` run per row, as the single-env reward wrapper does,
so rewards and fitness mean the same thing in both paths.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from autogai.core.errors import ConfigError

if TYPE_CHECKING:
    from autogai.tasks.card import TaskCard


@dataclass
class PopulationStep:
    """What one step of every row produced (arrays ``[P, E, ...]``; metric dicts per row)."""

    obs: np.ndarray  # the observations the actions were taken in
    next_obs: np.ndarray  # the true next observations (the final ones where an episode ended)
    env_reward: np.ndarray  # the env's own reward
    terminated: np.ndarray
    done: np.ndarray  # terminated or truncated
    metrics: list[dict[str, float]]  # per row, the card's metrics of the step
    step_fitness: np.ndarray  # the card's per-step fitness


def _vector_creator(env_id: str) -> Any:
    """The spec's ``vector_entry_point`` as a callable, or None."""
    from autogai.envs import register_envs

    register_envs()
    try:
        spec = gym.spec(env_id)
    except gym.error.Error:
        return None
    entry = spec.vector_entry_point
    if entry is None:
        return None
    return gym.envs.registration.load_env_creator(entry) if isinstance(entry, str) else entry


class PopulationEnv:
    """The envs of P agents, E each. Build it, ``reset`` once, then ``step`` with coords ``[P, E, k]``.

    ``seed`` seeds the envs: row ``r`` of the list back end is reset with ``seed + r`` at the start (or
    ``row_seeds[r]``: evaluation gives every agent the same episodes) and then continues its own RNG; the
    batched back end is reset with ``seed`` and then ``seed + episode``.
    """

    def __init__(
        self,
        task: TaskCard,
        agents: int,
        envs_per_agent: int,
        *,
        env_kwargs: Mapping[str, Any] | None = None,
        seed: int = 0,
        row_seeds: Sequence[int] | None = None,
        scenario_seeds: Sequence[int] | None = None,
        adapter: Any = None,
    ) -> None:
        if agents < 1 or envs_per_agent < 1:
            raise ConfigError(
                f"a population needs >= 1 agent and env per agent (got {agents}, {envs_per_agent})"
            )
        self.task = task
        self.agents = agents
        self.envs_per_agent = envs_per_agent
        self.env_kwargs = {**task.env_kwargs, **dict(env_kwargs or {})}
        self.seed = int(seed)
        self.row_seeds = None if row_seeds is None else [int(s) for s in row_seeds]
        # Per-row scenario seeds of an env with a scenario distribution (reset option ``scenario_seed``):
        # evaluation on held-out scenarios passes them, every agent the same ones.
        self.scenario_seeds = None if scenario_seeds is None else [int(s) for s in scenario_seeds]
        self.adapter = adapter
        self._episode = 0
        # One row steps the single env: its scalar code path is several times faster than a batch of one.
        self._creator = _vector_creator(task.env_id) if self.rows > 1 else None
        self._batch: Any = None
        self._envs: list[gym.Env] = []
        self._batch_rows: list[int] = list(range(self.rows))  # physical batch row of each live row
        if self._creator is not None:
            self._batch = self._creator(num_envs=self.rows, **self.env_kwargs)
        else:
            self._envs = [task.make_env(**(env_kwargs or {})) for _ in range(self.rows)]
        # Spaces, token layout and way-point codebook come from the single env, whatever steps the rows.
        single = self._envs[0] if self._envs else task.make_env(**(env_kwargs or {}))
        self.single_observation_space = single.observation_space
        self.single_action_space = single.action_space
        probe = single.unwrapped
        self.token_groups = (
            [np.asarray(g) for g in probe.observation_token_groups()]
            if hasattr(probe, "observation_token_groups")
            else None
        )
        codebook = getattr(probe, "action_codebook", None)
        codebook = codebook() if callable(codebook) else codebook
        self.action_codebook = None if codebook is None else np.asarray(codebook, dtype=np.float32)
        if not self._envs:
            single.close()
        self._obs: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return self.agents * self.envs_per_agent

    def _shape(self, array: np.ndarray) -> np.ndarray:
        return array.reshape(self.agents, self.envs_per_agent, *array.shape[1:])

    def reset(self) -> np.ndarray:
        """Start every row's first episode; returns observations ``[P, E, obs_dim]``."""
        if self._batch is not None:
            obs, _ = self._batch.reset(seed=self.seed)
        else:
            seeds = self.row_seeds or [self.seed + r for r in range(self.rows)]
            obs = np.stack(
                [
                    np.asarray(env.reset(seed=s)[0], dtype=np.float32)
                    for s, env in zip(seeds, self._envs, strict=True)
                ]
            )
        self._obs = self._shape(np.asarray(obs, dtype=np.float32))
        return self._obs

    def step(self, coords: np.ndarray) -> PopulationStep:
        """Step every row with executed coords ``[P, E, k]`` (auto-reset where an episode ended)."""
        assert self._obs is not None, "call reset() first"
        task, obs = self.task, self._obs
        flat_coords = np.asarray(coords).reshape(self.rows, -1)
        flat_obs = obs.reshape(self.rows, -1)
        rewards = np.empty(self.rows)
        terminated = np.zeros(self.rows, dtype=bool)
        done = np.zeros(self.rows, dtype=bool)
        next_obs = np.empty_like(flat_obs)
        reset_obs = np.empty_like(flat_obs)
        metrics: list[dict[str, float]] = []
        fitness = np.empty(self.rows)
        if self._batch is not None:
            live = self._batch_rows
            full = np.zeros((self._batch.n_envs, flat_coords.shape[1]), dtype=np.float32)
            full[live] = flat_coords
            batch_obs, batch_reward, batch_terminated, batch_truncated, info = self._batch.step(
                self.adapter.to_env(full)
            )
            next_obs[:] = np.asarray(batch_obs)[live]
            rewards[:] = np.asarray(batch_reward)[live]
            terminated[:] = np.asarray(batch_terminated)[live]
            done[:] = (np.asarray(batch_terminated) | np.asarray(batch_truncated))[live]
            for r, b in enumerate(live):
                row_info = {name: value[b] for name, value in info.items()}
                row_action = self.adapter.to_env(flat_coords[r])
                m = task.step_metrics(flat_obs[r], row_action, float(rewards[r]), next_obs[r], row_info)
                metrics.append(m)
                fitness[r] = task.step_fitness(m, float(rewards[r]))
            reset_obs[:] = next_obs
            if done.any():
                if not done.all():
                    raise ConfigError(f"{task.env_id}: a batched simulator must end all episodes together")
                reset_obs[:] = self._next_episode()
        else:
            for r, env in enumerate(self._envs):
                action = self.adapter.to_env(flat_coords[r])
                o, reward, term, trunc, info = env.step(action)
                next_obs[r] = o
                rewards[r], terminated[r], done[r] = float(reward), bool(term), bool(term or trunc)
                m = task.step_metrics(flat_obs[r], action, float(reward), next_obs[r], info)
                metrics.append(m)
                fitness[r] = task.step_fitness(m, float(reward))
                reset_obs[r] = env.reset()[0] if done[r] else o
        self._obs = self._shape(reset_obs)
        return PopulationStep(
            obs=obs,
            next_obs=self._shape(next_obs),
            env_reward=self._shape(rewards),
            terminated=self._shape(terminated),
            done=self._shape(done),
            metrics=metrics,
            step_fitness=self._shape(fitness),
        )

    def _next_episode(self) -> np.ndarray:
        """Batched back end: drop the rows of agents that left, reset for the next episode."""
        self._episode += 1
        if len(self._batch_rows) != self._batch.n_envs:
            assert self._creator is not None  # only the batched back end has rows to drop
            self._batch = self._creator(num_envs=self.rows, **self.env_kwargs)
            self._batch_rows = list(range(self.rows))
        obs, _ = self._batch.reset(seed=self.seed + self._episode)
        return np.asarray(obs, dtype=np.float32)[self._batch_rows]

    @property
    def observations(self) -> np.ndarray:
        """The observations the next actions will be taken in, ``[P, E, obs_dim]``."""
        assert self._obs is not None
        return self._obs

    def keep(self, agents: Sequence[int]) -> None:
        """Keep only the envs of the agents at positions ``agents`` (in that order)."""
        index = [int(i) for i in agents]
        rows = [i * self.envs_per_agent + j for i in index for j in range(self.envs_per_agent)]
        if self._obs is not None:
            self._obs = self._obs[index]
        if self._batch is None:
            dropped = set(range(self.rows)) - set(rows)
            for r in dropped:
                self._envs[r].close()
            self._envs = [self._envs[r] for r in rows]
            self.agents = len(index)
            return
        # The batch shares one clock: it is rebuilt smaller at the next episode boundary. Until then the
        # rows of leaving agents step with zero coords (microseconds) and their outputs are ignored.
        self._batch_rows = [self._batch_rows[r] for r in rows]
        self.agents = len(index)

    def close(self) -> None:
        for env in self._envs:
            env.close()
        self._envs = []
        if self._batch is not None and hasattr(self._batch, "close"):
            self._batch.close()
