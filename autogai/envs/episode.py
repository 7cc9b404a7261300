"""One episode of any Gymnasium environment under a policy that reads the observation and the ``info``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym


def run_episode(
    env: gym.Env,
    policy: Callable[[Any, Mapping[str, Any]], Any],
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Roll out one episode with ``policy(obs, info) -> action``; return the ``info`` of every step."""
    obs, info = env.reset(seed=seed, options=options)
    infos: list[dict[str, Any]] = []
    while True:
        obs, _, terminated, truncated, info = env.step(policy(obs, info))
        infos.append(info)
        if terminated or truncated:
            return infos
