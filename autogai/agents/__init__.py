"""agents layer: one TD3 with four generative-model enhancer slots (torch lives here and below only).

Public API: :class:`TD3Config`, :func:`make_agent`, :class:`TD3Agent`, :class:`ActionAdapter`,
:class:`ReplayBuffer` / :class:`ReplayBatch`. Design: ``AGENTS.md``; the paper: Sun et al.,
"Generative AI for Deep Reinforcement Learning: Framework, Analysis, and Use Cases", arXiv 2405.20568.
"""

from __future__ import annotations

from autogai.agents.adapters import ActionAdapter, default_codebook
from autogai.agents.buffer import ReplayBatch, ReplayBuffer
from autogai.agents.config import TD3Config
from autogai.agents.td3 import TD3Agent, make_agent

__all__ = [
    "ActionAdapter",
    "ReplayBatch",
    "ReplayBuffer",
    "TD3Agent",
    "TD3Config",
    "default_codebook",
    "make_agent",
]
