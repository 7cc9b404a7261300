"""Gymnasium environments of autogai; importing this package registers them (the Gymnasium convention).

::

    import gymnasium as gym
    import autogai.envs

    gym.register_envs(autogai.envs)  # optional: keeps linters from flagging the import as unused
    env = gym.make("autogai/UAVNearField-v0")

The UAV near-field task is the subpackage :mod:`autogai.envs.uav` (its physics needs numpy only; the
environment classes need gymnasium); :func:`autogai.envs.episode.run_episode` rolls out one episode of any env.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

ENV_IDS = ("autogai/UAVNearField-v0",)
"""Every environment id this package registers."""


def make_uav_batch(num_envs: int, **kwargs: Any) -> Any:
    """``num_envs`` UAVs stepped at once (Gymnasium's ``vector_entry_point`` calling convention)."""
    from autogai.envs.uav.batch import UAVNearFieldBatch

    return UAVNearFieldBatch(num_envs, **kwargs)


def register_envs() -> None:
    """Register autogai's environments with Gymnasium (idempotent; importing the package already does)."""
    if "autogai/UAVNearField-v0" not in gym.registry:
        gym.register(
            id="autogai/UAVNearField-v0",
            entry_point="autogai.envs.uav:UAVNearFieldEnv",
            # Populations step the batched simulator: every row an independent UAV (same physics).
            vector_entry_point="autogai.envs:make_uav_batch",
            max_episode_steps=None,  # the env truncates itself at its horizon
        )


register_envs()
