"""Reward programs: the public contract, validation, the sandbox, the gymnasium wrapper.

The contract (``PARAMS`` plus ``compute_reward(m, p) -> (total, components)``) is described in
:mod:`autogai.rewards.program`, its static checks in :mod:`autogai.rewards.static_checks`. Names are
imported lazily: the sandbox worker imports this package and must stay small (numpy only; no gymnasium).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autogai.rewards.in_process import CompiledReward, load_program
    from autogai.rewards.program import RewardProgram
    from autogai.rewards.sandbox import RowRewards, SandboxedReward
    from autogai.rewards.static_checks import ParamSpec
    from autogai.rewards.validation import (
        Transition,
        ValidationReport,
        collect_transitions,
        validate_reward_program,
    )
    from autogai.rewards.wrapper import RewardWrapper

_EXPORTS = {
    "CompiledReward": "autogai.rewards.in_process",
    "ParamSpec": "autogai.rewards.static_checks",
    "RewardProgram": "autogai.rewards.program",
    "load_program": "autogai.rewards.in_process",
    "RowRewards": "autogai.rewards.sandbox",
    "SandboxedReward": "autogai.rewards.sandbox",
    "Transition": "autogai.rewards.validation",
    "ValidationReport": "autogai.rewards.validation",
    "collect_transitions": "autogai.rewards.validation",
    "validate_reward_program": "autogai.rewards.validation",
    "RewardWrapper": "autogai.rewards.wrapper",
}

__all__ = [
    "CompiledReward",
    "ParamSpec",
    "RewardProgram",
    "RewardWrapper",
    "RowRewards",
    "SandboxedReward",
    "Transition",
    "ValidationReport",
    "collect_transitions",
    "load_program",
    "validate_reward_program",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'autogai.rewards' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
