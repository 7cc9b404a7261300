"""Gymnasium environments (numpy only)."""

from __future__ import annotations

_REGISTERED = False


def register_envs() -> None:
    """Register autogai's environments with gymnasium (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    import gymnasium as gym

    if "autogai/UAVNearField-v0" not in gym.registry:
        gym.register(
            id="autogai/UAVNearField-v0",
            entry_point="autogai.envs.uav_nearfield:UAVNearFieldEnv",
            max_episode_steps=None,  # the env truncates itself at its horizon
        )
    _REGISTERED = True
