"""Running a reward program in *this* process: for trusted code and tests only.

The program keeps the restricted runtime's fences (:mod:`autogai.rewards.restricted`) but none of the process
limits; untrusted code goes through :class:`autogai.rewards.sandbox.SandboxedReward`.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

from autogai.rewards import restricted
from autogai.rewards.program import RewardProgram


class CompiledReward:
    """A program loaded in *this* process. For trusted code and tests only: it has the restricted
    runtime's fences but none of the process limits (use :class:`~autogai.rewards.sandbox.SandboxedReward`)."""

    def __init__(self, program: RewardProgram, params: Mapping[str, float] | None = None) -> None:
        self.program = program
        self.params = types.MappingProxyType(program.resolve_params(params))
        namespace = restricted.make_globals()
        exec(program.compile(), namespace)
        self._function = namespace["compute_reward"]

    def __call__(
        self, metrics: Mapping[str, Any], obs: Any, action: Any, next_obs: Any
    ) -> tuple[float, dict[str, float]]:
        return self.call_view(restricted.MetricsView.build(metrics, obs, action, next_obs))

    def call_view(self, view: restricted.MetricsView) -> tuple[float, dict[str, float]]:
        return restricted.check_output(self._function(view, self.params))


def load_program(program: RewardProgram | str, params: Mapping[str, float] | None = None) -> CompiledReward:
    """Load ``program`` in the current process (trusted code and tests only)."""
    if isinstance(program, str):
        program = RewardProgram.from_source(program)
    return CompiledReward(program, params)
