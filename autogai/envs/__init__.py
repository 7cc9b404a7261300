"""Gymnasium environments (numpy only)."""

from __future__ import annotations

from typing import Any

_REGISTERED = False


def make_uav_batch(num_envs: int, **kwargs: Any) -> Any:
    """``num_envs`` UAVs stepped at once (Gymnasium's ``vector_entry_point`` calling convention)."""
    from autogai.envs.uav_nearfield import UAVNearFieldBatch

    return UAVNearFieldBatch(num_envs, **kwargs)


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
            # Populations step the batched simulator: every row an independent UAV (same physics).
            vector_entry_point="autogai.envs:make_uav_batch",
            max_episode_steps=None,  # the env truncates itself at its horizon
        )
    _REGISTERED = True
