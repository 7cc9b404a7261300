"""Reward programs: the public contract, validation, the sandbox, the gymnasium wrapper, extraction.

The contract (``PARAMS`` plus ``compute_reward(m, p) -> (total, components)``) is described in
:mod:`autogai.rewards.program`. Names are imported lazily: the sandbox worker imports this package and must
stay small (numpy only; no gymnasium).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autogai.rewards.extraction import extract_reward_program, extract_reward_programs
    from autogai.rewards.program import CompiledReward, ParamSpec, RewardProgram, load_program
    from autogai.rewards.sandbox import RowRewards, SandboxedReward
    from autogai.rewards.validation import (
        Transition,
        ValidationReport,
        collect_transitions,
        validate_reward_program,
    )
    from autogai.rewards.wrapper import RewardWrapper

_EXPORTS = {
    "CompiledReward": "autogai.rewards.program",
    "ParamSpec": "autogai.rewards.program",
    "RewardProgram": "autogai.rewards.program",
    "load_program": "autogai.rewards.program",
    "RowRewards": "autogai.rewards.sandbox",
    "SandboxedReward": "autogai.rewards.sandbox",
    "Transition": "autogai.rewards.validation",
    "ValidationReport": "autogai.rewards.validation",
    "collect_transitions": "autogai.rewards.validation",
    "validate_reward_program": "autogai.rewards.validation",
    "RewardWrapper": "autogai.rewards.wrapper",
    "extract_reward_program": "autogai.rewards.extraction",
    "extract_reward_programs": "autogai.rewards.extraction",
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
    "extract_reward_program",
    "extract_reward_programs",
    "load_program",
    "validate_reward_program",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'autogai.rewards' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
