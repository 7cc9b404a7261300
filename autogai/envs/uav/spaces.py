"""The UAV task's action and observation spaces and the observation's token layout."""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces

from autogai.envs.uav.config import RATE_SCALE, WAYPOINTS, UAVNearFieldConfig


def action_codebook(config: UAVNearFieldConfig) -> np.ndarray | None:
    """Where each hybrid way-point index sits in the agent's [-1, 1]^2 coordinates, or None.

    Row i is (sign of dx, sign of dy) of way-point i, so an action adapter that quantises continuous
    coordinates to the nearest row picks the move those coordinates point at (index 0 is hover).
    Only the hybrid mode has a Discrete part; discrete mode's MultiDiscrete levels are already ordered.
    """
    if config.action_mode != "hybrid":
        return None
    return np.asarray(WAYPOINTS, dtype=np.float32)


def observation_bounds(config: UAVNearFieldConfig) -> tuple[np.ndarray, np.ndarray]:
    """Honest float32 observation bounds: every reachable observation lies inside them."""
    size = config.area_size_m
    reach = 0.0 if config.clip_to_area else config.max_move_m * config.horizon
    low_xy, high_xy = -reach, size + reach
    z = config.altitude_m
    r1, r2 = config.max_rate_bs_uav, config.max_rate_uav_user
    n = config.n_elements
    if config.obs_mode == "normalized":
        low = np.concatenate([[low_xy / size] * 2, [z / size], -np.ones(2 * n), [0.0, 0.0, 0.0]])
        high = np.concatenate(
            [[high_xy / size] * 2, [z / size], np.ones(2 * n), [r1 / RATE_SCALE, r2 / RATE_SCALE, 1.0]]
        )
    else:
        amplitude = math.sqrt(config.bs_reference_gain) / z
        low = np.concatenate([[low_xy] * 2, [z], -amplitude * np.ones(n), [0.0, 0.0]])
        high = np.concatenate([[high_xy] * 2, [z], amplitude * np.ones(n), [r1, r2]])
    if config.scenario == "random":  # the user's (x, y), inside the area
        user_high = 1.0 if config.obs_mode == "normalized" else size
        low = np.concatenate([low, [0.0, 0.0]])
        high = np.concatenate([high, [user_high, user_high]])
    # Round outwards so that float32 rounding of an observation never leaves the box.
    low32 = np.nextafter(low.astype(np.float32), np.float32(-np.inf))
    high32 = np.nextafter(high.astype(np.float32), np.float32(np.inf))
    return low32, high32


def action_space(config: UAVNearFieldConfig) -> spaces.Space:
    """Box(-1, 1, (4,)), MultiDiscrete([3, 3, L, L]) or Tuple(Discrete(9), Box(-1, 1, (2,)))."""
    if config.action_mode == "continuous":
        return spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
    if config.action_mode == "discrete":
        levels = config.n_power_levels
        return spaces.MultiDiscrete(np.array([3, 3, levels, levels], dtype=np.int64))
    return spaces.Tuple(
        (spaces.Discrete(len(WAYPOINTS)), spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32))
    )


def observation_space(config: UAVNearFieldConfig) -> spaces.Box:
    """The float32 observation box of the configuration."""
    low, high = observation_bounds(config)
    return spaces.Box(low, high, dtype=np.float32)


def token_groups(config: UAVNearFieldConfig) -> list[np.ndarray]:
    """Token layout for Transformer backbones: int arrays [n_tokens, token_dim] indexing the observation.

    Normalized: one token (Re h_i, Im h_i) per antenna element and one state token (x, y, z, R1, R2, t).
    Author: one token (Re h_i) per element and one state token (x, y, z, R1, R2). With
    ``scenario="random"`` the state token also holds the user's (x, y).
    """
    n = config.n_elements
    index = np.arange(n, dtype=np.int64)
    if config.obs_mode == "normalized":
        elements = np.stack([3 + index, 3 + n + index], axis=1)  # (Re h_i, Im h_i) per element
        state = np.array([[0, 1, 2, 3 + 2 * n, 4 + 2 * n, 5 + 2 * n]], dtype=np.int64)  # x, y, z, R1, R2, t
    else:
        elements = (3 + index)[:, None]  # Re h_i per element (the authors' obs has no imaginary part)
        state = np.array([[0, 1, 2, 3 + n, 4 + n]], dtype=np.int64)  # x, y, z, R1, R2
    if config.scenario == "random":  # the user's (x, y) are the last two values
        size = config.observation_size
        state = np.concatenate([state, [[size - 2, size - 1]]], axis=1)
    return [elements, state]
