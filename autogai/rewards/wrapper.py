"""Apply a reward program to any gymnasium task: the env's reward is replaced by the program's total."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, SupportsFloat

import gymnasium as gym

from autogai.rewards.program import RewardProgram
from autogai.rewards.restricted import as_float_array
from autogai.rewards.sandbox import DEFAULT_CALL_CPU_LIMIT_S, SandboxedReward

if TYPE_CHECKING:
    from autogai.tasks.card import TaskCard


class RewardWrapper(gym.Wrapper):
    """``reward := compute_reward(m, p)[0]`` with ``m`` from the task card's ``metrics_fn``.

    Every step's ``info`` gains ``reward_components`` (the program's dict), ``env_reward`` (the env's own
    reward), ``metrics`` (the card's metrics of the step) and ``step_fitness`` (``card.fitness_fn``: what
    designs are ranked on, independent of the reward). The program runs in a :class:`SandboxedReward`; a
    failing program raises :class:`~autogai.core.errors.RewardRuntimeError` from :meth:`step` (the training
    loop records it and ends the run). :meth:`close` stops the sandbox.

    Arguments:
        env: the task's environment (``task.make_env()``).
        program: a :class:`RewardProgram` or its source.
        task: the task card (metrics and fitness functions).
        params: values of the program's ``PARAMS`` (defaults for missing ones).
        call_timeout_s, call_cpu_limit_s, memory_limit_mb: passed to :class:`SandboxedReward` (every call
            has a CPU budget during training as in validation).
    """

    def __init__(
        self,
        env: gym.Env,
        program: RewardProgram | str,
        task: TaskCard,
        params: Mapping[str, float] | None = None,
        *,
        call_timeout_s: float = 5.0,
        call_cpu_limit_s: float | None = DEFAULT_CALL_CPU_LIMIT_S,
        memory_limit_mb: int = 256,
    ) -> None:
        super().__init__(env)
        self.program = program if isinstance(program, RewardProgram) else RewardProgram.from_source(program)
        self.task = task
        self.params = self.program.resolve_params(params)
        self.sandbox = SandboxedReward(
            self.program,
            task,
            self.params,
            call_timeout_s=call_timeout_s,
            call_cpu_limit_s=call_cpu_limit_s,
            memory_limit_mb=memory_limit_mb,
        )
        self._last_obs: Any = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._last_obs = obs
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._last_obs is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        obs, env_reward, terminated, truncated, info = self.env.step(action)
        env_reward = float(env_reward)
        metrics = self.task.step_metrics(self._last_obs, action, env_reward, obs, info)
        total, components = self.sandbox.compute(
            metrics, self._flat(self._last_obs), as_float_array(action), self._flat(obs)
        )
        info = dict(info)
        info["reward_components"] = components
        info["env_reward"] = env_reward
        info["metrics"] = metrics
        info["step_fitness"] = self.task.step_fitness(metrics, env_reward)
        self._last_obs = obs
        return obs, total, terminated, truncated, info

    def _flat(self, obs: Any) -> Any:
        """Dict/tuple observations are flattened to one vector for ``m.obs``."""
        if isinstance(obs, (dict, tuple)):
            return gym.spaces.flatten(self.env.observation_space, obs)
        return obs

    def close(self) -> None:
        self.sandbox.close()
        super().close()
