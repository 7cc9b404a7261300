"""agents layer: one TD3 for populations of agents, with four generative-model enhancer slots.

The only layer that imports torch at import time; the training loop, the local embeddings and seeding import
it inside the functions that use it, and the CLI, pipeline, search, rewards, tasks and envs layers never
(import-linter contract in pyproject.toml; tests/test_architecture.py; docs/architecture.md).

Public API: :class:`TD3Config`, :class:`TD3Population` (P = 1 is the single agent), :class:`ActionAdapter`,
:class:`ReplayBuffer` / :class:`ReplayBatch`. The design is described in ``docs/agents.md``; the paper:
Sun et al., "Generative AI for Deep Reinforcement Learning: Framework, Analysis, and Use Cases",
arXiv 2405.20568.
"""

from __future__ import annotations

from autogai.agents.adapters import ActionAdapter, default_codebook
from autogai.agents.buffer import ReplayBatch, ReplayBuffer
from autogai.agents.config import PER_AGENT_FIELDS, TD3Config, check_same_population
from autogai.agents.td3 import TD3Population

__all__ = [
    "PER_AGENT_FIELDS",
    "ActionAdapter",
    "ReplayBatch",
    "ReplayBuffer",
    "TD3Config",
    "TD3Population",
    "check_same_population",
    "default_codebook",
]
