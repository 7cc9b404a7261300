"""Reference values of the UAV task that ``autogai env check`` and the tests hold the environment to.

The rates below were computed independently of this code from the paper's parameters (and, for the
``author_code`` column, the authors' own environment) and are reproduced by the environment to two decimals.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autogai.envs.uav.env import UAVNearFieldEnv

SANITY_TABLE: tuple[tuple[tuple[float, float], dict[str, float], float], ...] = (
    ((1.0, 0.0), {"unit_norm": 13.06, "unit_modulus": 18.70, "author_code": 18.65}, 4.09),
    ((1.0, 1.0), {"unit_norm": 13.02, "unit_modulus": 18.66, "author_code": 6.39}, 4.10),
    ((10.0, 10.0), {"unit_norm": 10.39, "unit_modulus": 16.03, "author_code": 5.09}, 4.24),
    ((50.0, 60.0), {"unit_norm": 5.71, "unit_modulus": 11.33, "author_code": 1.31}, 5.12),
    ((79.8, 106.4), {"unit_norm": 4.23, "unit_modulus": 9.80, "author_code": 0.02}, 6.21),
)
"""Expected (x, y) -> R1 per beamformer and R2 at altitude 6 m with both powers at 1000 mW (``docs/uav_env.md``)."""


def hover_rates(
    x: float, y: float, *, beamformer: str = "unit_norm", **env_kwargs: Any
) -> tuple[float, float]:
    """(R1, R2) of one full-power hovering step of the environment with the UAV placed at (x, y)."""
    env = UAVNearFieldEnv(beamformer=beamformer, **env_kwargs)
    env.reset(options={"uav_position": (x, y)})
    hover = {
        "continuous": np.array([0.0, 0.0, 1.0, 1.0]),
        "discrete": np.array([1, 1, env.config.n_power_levels - 1, env.config.n_power_levels - 1]),
        "hybrid": (0, np.array([1.0, 1.0])),
    }[env.config.action_mode]
    info = env.step(hover)[4]
    return info["rate_bs_uav"], info["rate_uav_user"]
