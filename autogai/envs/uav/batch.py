"""Many UAVs of one configuration stepped at once with numpy: population training, evaluation, benchmarks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from autogai.core.errors import ConfigError
from autogai.core.validation import check_positive_int
from autogai.envs.uav.config import RESET_METRIC_NAMES, UAVNearFieldConfig
from autogai.envs.uav.dynamics import InvalidAction, dynamics_for
from autogai.envs.uav.oracle import scenario_oracle_fitness
from autogai.envs.uav.scenario import Scenario, episode_scenarios
from autogai.envs.uav.spaces import action_codebook, action_space, observation_space, token_groups


class UAVNearFieldBatch:
    """Many independent UAVs of the same configuration stepped at once with numpy.

    Each row steps through the same transition as :class:`~autogai.envs.uav.env.UAVNearFieldEnv`
    (:class:`~autogai.envs.uav.dynamics.UAVDynamics`): the same action decoding, physics, metrics and
    observations. All UAVs share the clock: the step completing the horizon returns ``truncated`` all True
    and the batch must be ``reset`` before stepping again. Every row has its own scenario: with
    ``scenario="random"`` each row's user and start are drawn from its own scenario seed, and those seeds
    come from the batch's reset seed (or from ``options={"scenario_seed": [B ints]}``).

    Actions: continuous and discrete ``[B, 4]``; hybrid a pair ``(waypoints [B], powers [B, 2])``.
    ``step`` returns ``(obs [B, D] float32, reward [B], terminated [B], truncated [B], info)`` with
    ``info`` a dict of ``[B]`` arrays under the names of :data:`~autogai.envs.uav.config.METRIC_NAMES`.
    """

    def __init__(self, n_envs: int, config: UAVNearFieldConfig | None = None, **kwargs: Any) -> None:
        check_positive_int("n_envs", n_envs)
        if config is not None and kwargs:
            config = config.replace(**kwargs)
        self.config = config if config is not None else UAVNearFieldConfig.from_kwargs(**kwargs)
        self.n_envs = n_envs
        self.single_action_space = action_space(self.config)
        self.single_observation_space = observation_space(self.config)
        self._dynamics = dynamics_for(self.config)
        self._decode = self._dynamics.decoder((n_envs,))
        self._work = self._dynamics.workspace((n_envs,))  # obs handed out as a float32 copy
        self._rng = np.random.default_rng()
        self._scenarios: list[Scenario] = []
        self._user_x = self._user_y = np.zeros(n_envs)
        self._x = np.full(n_envs, np.nan)
        self._y = np.full(n_envs, np.nan)
        self._t = -1

    def action_codebook(self) -> np.ndarray | None:
        """Where each hybrid way-point index sits in the agent's [-1, 1]^2 coordinates (None unless hybrid)."""
        return action_codebook(self.config)

    def observation_token_groups(self) -> list[np.ndarray]:
        """Token layout for Transformer backbones (see :func:`autogai.envs.uav.spaces.token_groups`)."""
        return token_groups(self.config)

    def reset(
        self, *, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Start all UAVs. Options: ``uav_position`` ([B, 2] or (x, y)); ``scenario_seed`` ([B] ints)."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        scenarios = episode_scenarios(self.config, self._rng, self.n_envs, options)
        self._scenarios = scenarios
        starts = np.array([scenario.start_position for scenario in scenarios])
        users = np.array([scenario.user_position[:2] for scenario in scenarios])
        self._user_x, self._user_y = users[:, 0].copy(), users[:, 1].copy()
        zeros = np.zeros(self.n_envs)
        obs, metrics = self._advance(starts[:, 0], starts[:, 1], (zeros, zeros, zeros, zeros), 0)
        return obs, {name: metrics[name] for name in RESET_METRIC_NAMES}

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        if self._t < 0 or self._t >= self.config.horizon:
            raise gym.error.ResetNeeded(
                "call reset() before step()" if self._t < 0 else "the episode ended; call reset()"
            )
        try:
            decoded = self._decode(actions)
        except InvalidAction as error:
            raise ConfigError(
                f"batch actions do not fit {self.single_action_space} per UAV: {error}"
            ) from None
        obs, metrics = self._advance(self._x, self._y, decoded, self._t + 1)
        terminated = np.zeros(self.n_envs, dtype=bool)
        truncated = np.full(self.n_envs, self._t >= self.config.horizon)
        return obs, metrics["fitness"], terminated, truncated, metrics

    def _advance(
        self, x: np.ndarray, y: np.ndarray, decoded: tuple[Any, Any, Any, Any], t: int
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        slots = np.full(self.n_envs, t, dtype=np.int64)
        metrics = self._dynamics.transition(x, y, decoded, slots, self._user_x, self._user_y, self._work)
        # The metrics are handed out; the state keeps its own copies.
        self._x, self._y, self._t = metrics["x"].copy(), metrics["y"].copy(), t
        return self._work.obs.astype(np.float32), metrics

    @property
    def scenarios(self) -> list[Scenario]:
        """Each row's scenario (user position, start, scenario seed) since the last ``reset``."""
        return list(self._scenarios)

    def oracle_fitness(self) -> np.ndarray:
        """[B] best achievable episode fitness of each row's scenario (computed once per scenario, cached)."""
        if not self._scenarios:
            raise gym.error.ResetNeeded("call reset() before asking for the oracle")
        return np.array([scenario_oracle_fitness(self.config, scenario) for scenario in self._scenarios])
